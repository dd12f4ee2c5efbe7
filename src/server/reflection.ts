// Server reflection (grpc.reflection.v1alpha) built from the descriptors protobuf-es embeds in
// the generated code, so tools like grpcurl work without .proto files and no descriptor set
// has to be built or shipped separately.

import type { DescFile, DescService } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ServerReflection } from "nice-grpc-server-reflection";

function withDependencies(files: readonly DescFile[]): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (f: DescFile): void => {
    if (seen.has(f.proto.name)) return;
    for (const dep of f.dependencies) visit(dep);
    seen.set(f.proto.name, f); // dependencies first, as protoc orders a descriptor set
  };
  for (const f of files) visit(f);
  return [...seen.values()];
}

export function reflectionService(services: readonly DescService[]) {
  const files = withDependencies(services.map((s) => s.file));
  const set = create(FileDescriptorSetSchema, { file: files.map((f) => f.proto) });
  return ServerReflection(
    toBinary(FileDescriptorSetSchema, set),
    services.map((s) => s.typeName),
  );
}
