// Test-only accessor: a Replica's private state, for the tests, the simulator and the reference
// paths that check (or deliberately break) the replica's internals. Nothing in src/ may use it:
// outside src/core, `npm run check:core` fails any file that names replicaStateOf, and the edge
// reads a replica through its methods only.

export { replicaStateOf as stateOf } from "../../src/core/crdt/replica.ts";
