// Adapts a protobuf-es v2 service descriptor to a nice-grpc service definition.
//
// nice-grpc ships adapters for grpc-js and ts-proto definitions but not for protobuf-es v2, so
// this maps each method to its path, stream flags and binary (de)serializers. Requests are
// accepted as init shapes (plain objects) on the sending side and decoded to full messages.

import { create, fromBinary, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import type { MethodDefinition } from "nice-grpc";

type MethodKind = GenServiceMethods[string]["methodKind"];

type Definition<M extends GenServiceMethods[string]> = MethodDefinition<
  MessageInitShape<M["input"]>,
  MessageShape<M["input"]>,
  MessageInitShape<M["output"]>,
  MessageShape<M["output"]>,
  M["methodKind"] extends "client_streaming" | "bidi_streaming" ? true : false,
  M["methodKind"] extends "server_streaming" | "bidi_streaming" ? true : false
>;

export type NiceServiceDefinition<S extends GenServiceMethods> = {
  [K in keyof S]: Definition<S[K]>;
};

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

function streams(kind: MethodKind): { requestStream: boolean; responseStream: boolean } {
  return {
    requestStream: kind === "client_streaming" || kind === "bidi_streaming",
    responseStream: kind === "server_streaming" || kind === "bidi_streaming",
  };
}

function idempotencyOption(level: Idempotency): MethodDefinition<unknown, unknown, unknown, unknown>["options"] {
  if (level === Idempotency.NO_SIDE_EFFECTS) return { idempotencyLevel: "NO_SIDE_EFFECTS" };
  if (level === Idempotency.IDEMPOTENT) return { idempotencyLevel: "IDEMPOTENT" };
  return {};
}

/** A nice-grpc definition keyed by the generated local method names (`consume`, `query`, ...). */
export function niceDefinition<S extends GenServiceMethods>(service: GenService<S>): NiceServiceDefinition<S> {
  const out: Record<string, MethodDefinition<unknown, unknown, unknown, unknown>> = {};
  for (const method of service.methods) {
    const { input, output } = method;
    out[lowerFirst(method.localName)] = {
      path: `/${service.typeName}/${method.name}`,
      ...streams(method.methodKind),
      // create() accepts a full message unchanged and fills defaults into a plain init object.
      requestSerialize: (value) => toBinary(input, create(input, value as MessageInitShape<typeof input>)),
      requestDeserialize: (bytes) => fromBinary(input, bytes),
      responseSerialize: (value) => toBinary(output, create(output, value as MessageInitShape<typeof output>)),
      responseDeserialize: (bytes) => fromBinary(output, bytes),
      options: idempotencyOption(method.idempotency),
    };
  }
  return out as NiceServiceDefinition<S>;
}
