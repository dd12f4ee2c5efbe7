// Test certificates for mutual TLS between replicas: a cluster CA, replica certificates it
// signs (with 127.0.0.1 and localhost as subject alternative names), and an impostor signed by
// a different CA. Made fresh per test run with the openssl command-line tool.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CertFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /**
   * A replica identity signed by the cluster CA, valid for `altNames` (openssl's
   * subjectAltName syntax; default `IP:127.0.0.1,DNS:localhost`).
   */
  replica(name: string, altNames?: string): CertFiles;
  /** An identity signed by another CA: must be refused. */
  impostor(name: string): CertFiles;
  read(path: string): Buffer;
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
  ]);
}

function issue(dir: string, ca: string, name: string, altNames = "IP:127.0.0.1,DNS:localhost"): void {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${altNames}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    ext,
    "-out",
    `${name}.crt`,
  ]);
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-pki-"));
  makeCa(dir, "cluster-ca");
  makeCa(dir, "other-ca");
  const files = (ca: string, name: string): CertFiles => ({
    ca: join(dir, `${ca}.crt`),
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
  });
  return {
    dir,
    replica(name, altNames) {
      issue(dir, "cluster-ca", name, altNames);
      return files("cluster-ca", name);
    },
    impostor(name) {
      issue(dir, "other-ca", name);
      return files("cluster-ca", name);
    },
    read: (path) => readFileSync(path),
  };
}
