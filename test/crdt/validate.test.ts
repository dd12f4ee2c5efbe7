// Table-driven validation of a peer's delta: every field, the limit it breaks, the field named
// in the error. A valid delta parses; each mutation of it is rejected with that field.

import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, type UntrustedDelta, validateDelta } from "../../src/core/crdt/index.ts";
import { viaWire } from "../support/via-wire.ts";
import { config, Mesh } from "./mesh.ts";

function validDelta(): UntrustedDelta {
  const m = new Mesh(["a", "b"]);
  m.round(1_000);
  m.get("a").consume("k", config(), 3, m.now);
  m.now += 5_000;
  m.get("a").tick(m.now);
  const d = m.get("a").deltaFor("c", m.now); // a fresh peer: the whole state
  if (d === undefined) throw new Error("no delta");
  return viaWire(d);
}

type Json = Record<string, unknown>;
const CASES: [string, (d: Json) => void, string][] = [
  [
    "node empty",
    (d) => {
      d.node = "";
    },
    "node",
  ],
  [
    "node too long",
    (d) => {
      d.node = "x".repeat(300);
    },
    "node",
  ],
  [
    "inc not hex",
    (d) => {
      d.incarnation = "g".repeat(32);
    },
    "incarnation",
  ],
  [
    "from negative",
    (d) => {
      d.fromSeq = -1;
    },
    "fromSeq",
  ],
  [
    "to before from",
    (d) => {
      d.fromSeq = 10;
      d.toSeq = 5;
    },
    "toSeq",
  ],
  [
    "sentAt fractional",
    (d) => {
      d.sentAtUs = 1.5;
    },
    "sentAtUs",
  ],
  [
    "horizon not a number",
    (d) => {
      d.horizonUs = "0";
    },
    "horizonUs",
  ],
  [
    "incarnations not an array",
    (d) => {
      d.incarnations = {};
    },
    "incarnations",
  ],
  [
    "incarnations repeated",
    (d) => {
      d.incarnations = [(d.incarnations as string[])[0], (d.incarnations as string[])[0]];
    },
    `incarnations[1]`,
  ],
  [
    "too many incarnations",
    (d) => {
      d.incarnations = Array.from({ length: DEFAULT_LIMITS.maxIncsPerDelta + 1 }, (_, i) => i.toString(16).padStart(32, "0"));
    },
    "incarnations",
  ],
  [
    "record shape",
    (d) => {
      d.records = [[0, 1]];
    },
    "records[0]",
  ],
  [
    "record index",
    (d) => {
      d.records = [[9, 1, -1]];
    },
    "records[0][0]",
  ],
  [
    "record retired below -1",
    (d) => {
      d.records = [[0, 1, -2]];
    },
    "records[0][2]",
  ],
  [
    "keys not an array",
    (d) => {
      d.keys = "k";
    },
    "keys",
  ],
  [
    "key name empty",
    (d) => {
      key(d).key = "";
    },
    "keys[0].key",
  ],
  [
    "key name too long",
    (d) => {
      key(d).key = "k".repeat(DEFAULT_LIMITS.maxKeyLength + 1);
    },
    "keys[0].key",
  ],
  [
    "key repeated",
    (d) => {
      d.keys = [key(d), key(d)];
    },
    "keys[1].key",
  ],
  [
    "config capacity 0",
    (d) => {
      (key(d).limit as Json).capacity = 0;
    },
    "keys[0].limit",
  ],
  [
    "config version negative",
    (d) => {
      (key(d).limit as Json).version = -1;
    },
    "keys[0].limit.version",
  ],
  [
    "prefix config refill 0",
    (d) => {
      ((key(d).prefix as Json).limit as Json).refillTokens = 0;
    },
    "keys[0].prefix.limit",
  ],
  [
    "prefix tau negative",
    (d) => {
      (key(d).prefix as Json).tauUs = -5;
    },
    "keys[0].prefix.tauUs",
  ],
  [
    "prefix level above capacity",
    (d) => {
      (key(d).prefix as Json).level = 10 ** 12;
    },
    "keys[0].prefix.level",
  ],
  [
    "prefix level below the floor",
    (d) => {
      (key(d).prefix as Json).level = -(2 ** 53);
    },
    "keys[0].prefix.level",
  ],
  [
    "prefix sumF fractional",
    (d) => {
      (key(d).prefix as Json).foldedSum = 0.5;
    },
    "keys[0].prefix.foldedSum",
  ],
  [
    "F row shape",
    (d) => {
      (key(d).prefix as Json).folded = [[0]];
    },
    "keys[0].prefix.folded[0]",
  ],
  [
    "K count beyond the content bound",
    (d) => {
      key(d).known = [[0, 10 ** 12]];
    },
    "keys[0].known[0][1]",
  ],
  [
    "K repeats an incarnation",
    (d) => {
      key(d).known = [
        [0, 1],
        [0, 2],
      ];
    },
    "keys[0].known[1]",
  ],
  [
    "entry shape",
    (d) => {
      key(d).entries = [[0, 1, 2]];
    },
    "keys[0].entries[0]",
  ],
  [
    "entry c1 zero",
    (d) => {
      key(d).entries = [[0, 2_000_000, 0, 0]];
    },
    "keys[0].entries[0][3]",
  ],
  [
    "entry c0 = c1",
    (d) => {
      key(d).entries = [[0, 2_000_000, 3, 3]];
    },
    "keys[0].entries[0][2]",
  ],
  [
    "entry repeated",
    (d) => {
      key(d).entries = [
        [0, 2_000_000, 0, 1],
        [0, 2_000_000, 0, 2],
      ];
    },
    "keys[0].entries",
  ],
  [
    "too many entries",
    (d) => {
      key(d).entries = Array.from({ length: DEFAULT_LIMITS.maxEntriesPerKey + 1 }, (_, i) => [0, 2_000_000 + i, i, i + 1]);
    },
    "keys[0].entries",
  ],
  [
    "partial missing",
    (d) => {
      delete key(d).partial;
    },
    "keys[0].partial",
  ],
];

const LIMITS = { ...DEFAULT_LIMITS, policyMax: { capacity: 10, tokensPerSecond: 1000 } };

function key(d: Json): Json {
  return (d.keys as Json[])[0] as Json;
}

describe("validateDelta", () => {
  it("accepts a delta a replica produced", () => {
    const r = validateDelta(validDelta(), LIMITS);
    expect(r.ok).toBe(true);
  });
  for (const [name, mutate, field] of CASES) {
    it(`rejects ${name} naming ${field}`, () => {
      const d = validDelta() as unknown as Json;
      mutate(d);
      const r = validateDelta(d as unknown as UntrustedDelta, LIMITS);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.field).toBe(field);
        expect(r.error.message.length).toBeGreaterThan(5);
      }
    });
  }
  it("never throws on junk", () => {
    for (const junk of [
      null,
      3,
      "x",
      [],
      { node: "n" },
      {
        node: "n",
        incarnation: "0".repeat(32),
        fromSeq: 0,
        toSeq: 0,
        sentAtUs: 0,
        horizonUs: 0,
        incarnations: [],
        records: [],
        keys: [null],
      },
    ]) {
      expect(validateDelta(junk as unknown as UntrustedDelta).ok).toBe(false);
    }
  });
});
