// What operators and tools rely on: standard health, server reflection (grpcurl-style tools),
// and Prometheus metrics, each exercised over a real server.

import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { ServerReflectionService } from "nice-grpc-server-reflection";
import reflectionPb from "nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.ts";

describe("operations surface", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ policies: { api: { capacity: 2, refill: 1, per: "1s" } } });
  });
  afterAll(async () => {
    await t.close();
  });

  it("answers grpc.health.v1 for the server, tokenmesh.v1.RateLimiter and Envoy's RateLimitService", async () => {
    const health = createClient(HealthDefinition, t.channel);
    expect((await health.check({ service: "" })).status).toBe(1); // SERVING
    expect((await health.check({ service: "tokenmesh.v1.RateLimiter" })).status).toBe(1);
    expect((await health.check({ service: "envoy.service.ratelimit.v3.RateLimitService" })).status).toBe(1);
  });

  it("lists services and serves descriptors through reflection", async () => {
    const reflection = createClient(ServerReflectionService, t.channel);
    const list = new reflectionPb.ServerReflectionRequest();
    list.setListServices("*");
    const bySymbol = new reflectionPb.ServerReflectionRequest();
    bySymbol.setFileContainingSymbol("tokenmesh.v1.RateLimiter");
    const envoySymbol = new reflectionPb.ServerReflectionRequest();
    envoySymbol.setFileContainingSymbol("envoy.service.ratelimit.v3.RateLimitService");
    const envoyImport = new reflectionPb.ServerReflectionRequest();
    envoyImport.setFileByFilename("envoy/extensions/common/ratelimit/v3/ratelimit.proto");
    const answers: InstanceType<typeof reflectionPb.ServerReflectionResponse>[] = [];
    async function* requests() {
      yield list;
      yield bySymbol;
      yield envoySymbol;
      yield envoyImport;
    }
    for await (const response of reflection.serverReflectionInfo(requests())) answers.push(response);
    const names = answers[0]
      ?.getListServicesResponse()
      ?.getServiceList()
      .map((s) => s.getName());
    expect(names).toEqual(["tokenmesh.v1.RateLimiter", "envoy.service.ratelimit.v3.RateLimitService"]);
    const files = answers[1]?.getFileDescriptorResponse()?.getFileDescriptorProtoList_asU8() ?? [];
    const descriptors = files.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
    const own = descriptors.find((d) => d.name === "tokenmesh/v1/rate_limiter.proto");
    expect(own?.service[0]?.method.map((m) => m.name)).toEqual(["Consume", "Query"]);
    // Envoy's file, and its imports by name, so a reflection client can build every message.
    const filesOf = (i: number) =>
      (answers[i]?.getFileDescriptorResponse()?.getFileDescriptorProtoList_asU8() ?? []).map((bytes) =>
        fromBinary(FileDescriptorProtoSchema, bytes),
      );
    const rls = filesOf(2).find((d) => d.name === "envoy/service/ratelimit/v3/rls.proto");
    expect(rls?.service[0]?.method.map((m) => m.name)).toEqual(["ShouldRateLimit"]);
    expect(rls?.dependency).toContain("envoy/extensions/common/ratelimit/v3/ratelimit.proto");
    expect(filesOf(3).flatMap((d) => d.messageType.map((m) => m.name))).toContain("RateLimitDescriptor");
  });

  it("counts decisions per policy and result, keys held, and request latency", async () => {
    const d = { decisions: [{ buckets: [{ policy: "api", key: "m" }] }] };
    for (let i = 0; i < 3; i++) await t.client.consume(d);
    await t.client.consume({ decisions: [] }).catch(() => undefined);
    const text = await t.server.metrics.registry.metrics();
    expect(text).toContain('tokenmesh_decisions_total{policy="api",result="allowed"} 2');
    expect(text).toContain('tokenmesh_decisions_total{policy="api",result="denied"} 1');
    expect(text).toMatch(/^tokenmesh_keys 1$/m);
    const consume = 'grpc_service="tokenmesh.v1.RateLimiter",grpc_method="Consume"';
    expect(text).toContain(`tokenmesh_request_duration_seconds_count{${consume},grpc_code="OK"} 3`);
    expect(text).toContain(`tokenmesh_request_duration_seconds_count{${consume},grpc_code="INVALID_ARGUMENT"} 1`);
    // A second scrape does not double-count.
    const again = await t.server.metrics.registry.metrics();
    expect(again).toContain('tokenmesh_decisions_total{policy="api",result="allowed"} 2');
  });
});
