// Every scenario, in the order their rows appear in the table.

import type { Scenario } from "../lib/scenario.ts";
import { batch } from "./batch.ts";
import { doors } from "./doors.ts";
import { memoryAndKeys } from "./memory-and-keys.ts";
import { replication } from "./replication.ts";
import { scaling } from "./scaling.ts";
import { startUp } from "./start-up.ts";
import { tailLatency } from "./tail-latency.ts";
import { throughput } from "./throughput.ts";
import { userLevel } from "./user-level.ts";
import { versusRedis } from "./versus-redis.ts";

export const scenarios: readonly Scenario[] = [
  throughput,
  versusRedis,
  batch,
  tailLatency,
  memoryAndKeys,
  replication,
  scaling,
  doors,
  userLevel,
  startUp,
];
