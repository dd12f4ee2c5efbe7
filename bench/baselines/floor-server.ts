// Baseline "floor": the same proto on plain grpc-js, answering every decision with a constant
// result. It decodes the request (any real service must) and returns pre-encoded bytes, so its
// cost per call is grpc-js plus protobuf decoding: what no limiter on grpc-js can go below.

import { constantAnswer } from "./constant-answer.ts";
import { serveBaseline } from "./grpc-common.ts";

await serveBaseline("floor", (request) => constantAnswer(request.decisions.length));
