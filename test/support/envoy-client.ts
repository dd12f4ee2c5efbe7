// An Envoy-side client for envoy.service.ratelimit.v3.RateLimitService, loaded at run time from
// Envoy's own .proto files as @grpc/grpc-js-xds ships them (not from tokenmesh's generated
// code), so what it sends is what Envoy sends on the wire.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { credentials, type GrpcObject, loadPackageDefinition, type ServiceClientConstructor, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";

const xds = dirname(createRequire(import.meta.url).resolve("@grpc/grpc-js-xds/package.json"));
const DEPS = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(xds, "deps", d));

const definition = loadSync("envoy/service/ratelimit/v3/rls.proto", {
  includeDirs: DEPS,
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const root = loadPackageDefinition(definition);
const ns = (((root.envoy as GrpcObject).service as GrpcObject).ratelimit as GrpcObject).v3 as GrpcObject;
const RateLimitService = ns.RateLimitService as ServiceClientConstructor;

/** A request as Envoy builds it (field names as in rls.proto). */
export interface EnvoyRequest {
  domain: string;
  descriptors: { entries: { key: string; value: string }[]; limit?: { requests_per_unit: number; unit: string } }[];
  hits_addend?: number;
}

export interface EnvoyStatus {
  code: "OK" | "OVER_LIMIT" | "UNKNOWN";
  current_limit: { name: string; requests_per_unit: number; unit: string } | null;
  limit_remaining: number;
  duration_until_reset: { seconds: number; nanos: number } | null;
}

export interface EnvoyResponse {
  overall_code: "OK" | "OVER_LIMIT" | "UNKNOWN";
  statuses: EnvoyStatus[];
  response_headers_to_add: { key: string; value: string }[];
}

export interface EnvoyClient {
  shouldRateLimit(request: EnvoyRequest): Promise<EnvoyResponse>;
  /** Sends raw bytes as the request message (malformed-input tests). */
  raw(bytes: Uint8Array): Promise<EnvoyResponse>;
  close(): void;
}

export function envoyClient(address: string): EnvoyClient {
  const client = new RateLimitService(address, credentials.createInsecure());
  const call = (request: unknown, serialize?: (v: unknown) => Buffer): Promise<EnvoyResponse> =>
    new Promise((resolve, reject) => {
      const deadline = new Date(Date.now() + 5_000);
      if (serialize === undefined) {
        const method = client.ShouldRateLimit as (r: unknown, o: object, cb: (e: ServiceError | null, v: EnvoyResponse) => void) => void;
        method.call(client, request, { deadline }, (err, value) => (err === null ? resolve(value) : reject(err)));
        return;
      }
      const path = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";
      const decode = (ns.RateLimitService as ServiceClientConstructor).service.ShouldRateLimit?.responseDeserialize;
      client.makeUnaryRequest(
        path,
        serialize,
        (b: Buffer) => decode?.(b) as EnvoyResponse,
        request,
        { deadline },
        (err, value) => (err === null && value !== undefined ? resolve(value) : reject(err)),
      );
    });
  return {
    shouldRateLimit: (request) => call(request),
    raw: (bytes) => call(bytes, (v) => Buffer.from(v as Uint8Array)),
    close: () => client.close(),
  };
}
