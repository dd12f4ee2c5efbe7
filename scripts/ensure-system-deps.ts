// Makes sure the Debian packages the test suite needs are present, so `npm test` works on a fresh
// Debian machine with only Node installed: installs them with apt-get when running as root,
// otherwise prints the exact command and fails. Nothing is skipped silently.

import { execFileSync, spawnSync } from "node:child_process";

interface Need {
  readonly pkg: string;
  /** A command that succeeds when the package is usable. */
  readonly check: readonly string[];
}

const NEEDS: readonly Need[] = [
  // The Python client's tests: a C-core gRPC client against the grpc-js server. Debian's
  // python3-* packages serve /usr/bin/python3 (a pyenv or venv python3 on PATH would not see them).
  { pkg: "python3-grpcio", check: ["/usr/bin/python3", "-c", "import grpc"] },
  { pkg: "python3-protobuf", check: ["/usr/bin/python3", "-c", "import google.protobuf"] },
  // The ASGI middleware's tests: real FastAPI and Starlette apps served by uvicorn, called with httpx.
  { pkg: "python3-starlette", check: ["/usr/bin/python3", "-c", "import starlette"] },
  { pkg: "python3-fastapi", check: ["/usr/bin/python3", "-c", "import fastapi"] },
  { pkg: "python3-uvicorn", check: ["/usr/bin/python3", "-c", "import uvicorn"] },
  { pkg: "python3-httpx", check: ["/usr/bin/python3", "-c", "import httpx"] },
  // The Python client's type check, and the offline `pip install` into a throwaway venv
  // (setuptools and wheel are the build backend, ensurepip comes with python3-venv).
  { pkg: "python3-mypy", check: ["/usr/bin/python3", "-m", "mypy", "--version"] },
  { pkg: "python3-venv", check: ["/usr/bin/python3", "-c", "import ensurepip"] },
  { pkg: "python3-setuptools", check: ["/usr/bin/python3", "-c", "import setuptools"] },
  { pkg: "python3-wheel", check: ["/usr/bin/python3", "-c", "import wheel"] },
  // buf generate's Python plugins (protoc's built-in python and grpc_python_plugin).
  { pkg: "protobuf-compiler", check: ["protoc", "--version"] },
  { pkg: "protobuf-compiler-grpc", check: ["sh", "-c", "command -v grpc_python_plugin"] },
  // Test certificates for mutual TLS between replicas.
  { pkg: "openssl", check: ["openssl", "version"] },
  // `promtool check/test rules` on the shipped alert rules, and a real Prometheus scraping a mesh.
  { pkg: "prometheus", check: ["sh", "-c", "command -v promtool && command -v prometheus"] },
];

// kubectl (test/deploy/kubernetes.test.ts renders deploy/kubernetes with it) is not installed
// here: Debian's kubernetes-client is 1.20, whose kustomize v2.0.3 cannot read current
// kustomization files. The test fails, naming the reason, on a machine without a kubectl 1.21+.

const works = (cmd: readonly string[]): boolean => spawnSync(cmd[0] as string, cmd.slice(1), { stdio: "ignore" }).status === 0;

const missing = NEEDS.filter((n) => !works(n.check)).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);

const command = `apt-get install -y --no-install-recommends ${missing.join(" ")}`;
if (process.getuid?.() !== 0) {
  process.stderr.write(
    `The tests need Debian packages that are missing: ${missing.join(", ")}.\nInstall them with:\n  sudo apt-get update && sudo ${command}\n`,
  );
  process.exit(1);
}
process.stdout.write(`installing Debian packages the tests need: ${missing.join(" ")}\n`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], { stdio: "inherit", env });
const still = NEEDS.filter((n) => !works(n.check)).map((n) => n.pkg);
if (still.length > 0) {
  process.stderr.write(`still missing after apt-get: ${still.join(", ")}\n`);
  process.exit(1);
}
