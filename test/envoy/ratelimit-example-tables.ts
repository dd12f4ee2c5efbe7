// envoyproxy/ratelimit's README configuration examples 1-7 as request/answer tables, in
// ratelimit's own YAML format: the data the example tests run against a real server.

type Entries = [string, string][];

export interface Step {
  /** Descriptors of the request, each a list of [key, value] entries. */
  readonly send: Entries[];
  readonly hits?: number;
  /** Microseconds the clock moves before this request. */
  readonly after?: number;
  readonly overall: "OK" | "OVER_LIMIT";
  /** Per descriptor: code, then the limit (requests per unit) and what remains; null for no limit. */
  readonly statuses: ([code: "OK" | "OVER_LIMIT", limit: string, remaining: number] | [code: "OK", limit: null, remaining: number])[];
}

export interface Example {
  readonly name: string;
  readonly yaml: string;
  readonly steps: Step[];
}

const MAX_UINT32 = 4_294_967_295;

export const examples: Example[] = [
  {
    name: "1: two values of one key, each its own limit",
    yaml: `
domain: mongo_cps
descriptors:
  - key: database
    value: users
    rate_limit: { unit: second, requests_per_unit: 500 }
  - key: database
    value: default
    rate_limit: { unit: second, requests_per_unit: 500 }`,
    steps: [
      { send: [[["database", "users"]]], overall: "OK", statuses: [["OK", "500/SECOND", 499]] },
      { send: [[["database", "default"]]], overall: "OK", statuses: [["OK", "500/SECOND", 499]] },
      { send: [[["database", "users"]]], hits: 499, overall: "OK", statuses: [["OK", "500/SECOND", 0]] },
      { send: [[["database", "users"]]], overall: "OVER_LIMIT", statuses: [["OVER_LIMIT", "500/SECOND", 0]] },
      // A value the config does not list matches nothing (no key-only entry): no limit.
      { send: [[["database", "orders"]]], overall: "OK", statuses: [["OK", null, 0]] },
    ],
  },
  {
    name: "2: nested lists, and several descriptors in one request (over if any is)",
    yaml: `
domain: messaging
descriptors:
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit: { unit: day, requests_per_unit: 5 }
  - key: to_number
    rate_limit: { unit: day, requests_per_unit: 100 }`,
    steps: [
      {
        send: [
          [
            ["message_type", "marketing"],
            ["to_number", "2061111111"],
          ],
          [["to_number", "2061111111"]],
        ],
        hits: 5,
        overall: "OK",
        statuses: [
          ["OK", "5/DAY", 0],
          ["OK", "100/DAY", 95],
        ],
      },
      {
        send: [
          [
            ["message_type", "marketing"],
            ["to_number", "2061111111"],
          ],
          [["to_number", "2061111111"]],
        ],
        overall: "OVER_LIMIT",
        // All or nothing: the denied request took nothing from the 100 a day.
        statuses: [
          ["OVER_LIMIT", "5/DAY", 0],
          ["OK", "100/DAY", 95],
        ],
      },
      // Each number has its own limits (a key without a value limits each value apart).
      {
        send: [
          [
            ["message_type", "marketing"],
            ["to_number", "2062222222"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "5/DAY", 4]],
      },
      { send: [[["to_number", "2061111111"]]], overall: "OK", statuses: [["OK", "100/DAY", 94]] },
      // The placeholder level has no limit of its own.
      { send: [[["message_type", "marketing"]]], overall: "OK", statuses: [["OK", null, 0]] },
    ],
  },
  {
    name: "3: the most specific match wins (key and value before key alone)",
    yaml: `
domain: edge_proxy_per_ip
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 10 }
  - key: remote_address
    value: 50.0.0.5
    rate_limit: { unit: second, requests_per_unit: 0 }`,
    steps: [
      { send: [[["remote_address", "50.0.0.1"]]], overall: "OK", statuses: [["OK", "10/SECOND", 9]] },
      { send: [[["remote_address", "50.0.0.2"]]], hits: 10, overall: "OK", statuses: [["OK", "10/SECOND", 0]] },
      { send: [[["remote_address", "50.0.0.5"]]], overall: "OVER_LIMIT", statuses: [["OVER_LIMIT", "0/SECOND", 0]] },
      // A blocked descriptor makes the whole request over limit, so the other one takes nothing.
      {
        send: [[["remote_address", "50.0.0.5"]], [["remote_address", "50.0.0.1"]]],
        overall: "OVER_LIMIT",
        statuses: [
          ["OVER_LIMIT", "0/SECOND", 0],
          ["OK", "10/SECOND", 9],
        ],
      },
    ],
  },
  {
    name: "4: a request descriptor's depth must match the config's nesting",
    yaml: `
domain: example4
descriptors:
  - key: key
    value: value
    rate_limit: { requests_per_unit: 300, unit: second }
  - key: nested
    value: value
    descriptors:
      - key: subkey
        rate_limit: { requests_per_unit: 300, unit: second }`,
    steps: [
      {
        send: [
          [
            ["key", "value"],
            ["subkey", "subvalue"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", null, 0]],
      },
      { send: [[["key", "value"]]], overall: "OK", statuses: [["OK", "300/SECOND", 299]] },
      {
        send: [
          [
            ["nested", "value"],
            ["subkey", "subvalue"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "300/SECOND", 299]],
      },
      { send: [[["nested", "value"]]], overall: "OK", statuses: [["OK", null, 0]] },
    ],
  },
  {
    name: "5: unlimited answers OK with the largest remaining",
    yaml: `
domain: internal
descriptors:
  - key: ldap
    rate_limit: { unlimited: true }
  - key: azure
    rate_limit: { unit: minute, requests_per_unit: 100 }`,
    steps: [
      { send: [[["ldap", "x"]]], hits: 1000, overall: "OK", statuses: [["OK", null, MAX_UINT32]] },
      { send: [[["azure", "x"]]], overall: "OK", statuses: [["OK", "100/MINUTE", 99]] },
    ],
  },
  {
    name: "6: shadow mode answers OK whatever the count",
    yaml: `
domain: example6
descriptors:
  - key: service
    descriptors:
      - key: user
        value: user-a
        rate_limit: { requests_per_unit: 10, unit: second }
        shadow_mode: true
      - key: user
        value: user-b
        rate_limit: { requests_per_unit: 20, unit: second }`,
    steps: [
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-a"],
          ],
        ],
        hits: 10,
        overall: "OK",
        statuses: [["OK", "10/SECOND", 0]],
      },
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-a"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "10/SECOND", 0]],
      },
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-b"],
          ],
        ],
        hits: 20,
        overall: "OK",
        statuses: [["OK", "20/SECOND", 0]],
      },
      {
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-b"],
          ],
        ],
        overall: "OVER_LIMIT",
        statuses: [["OVER_LIMIT", "20/SECOND", 0]],
      },
      // A refilling bucket: 50 ms later one of user-b's 20 per second is back, not all 20.
      {
        after: 50_000,
        send: [
          [
            ["service", "auth-service"],
            ["user", "user-b"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "20/SECOND", 0]],
      },
    ],
  },
  {
    name: "7: replaces drops the replaced limit when both match",
    yaml: `
domain: example7
descriptors:
  - key: key_1
    value: value_1
    descriptors:
      - key: user
        value: bkthomps
        rate_limit: { name: specific_limit, requests_per_unit: 5, unit: second }
  - key: key_2
    value: value_2
    descriptors:
      - key: user
        value: bkthomps
        rate_limit:
          replaces: [{ name: specific_limit }]
          requests_per_unit: 10
          unit: second`,
    steps: [
      {
        send: [
          [
            ["key_1", "value_1"],
            ["user", "bkthomps"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "5/SECOND", 4]],
      },
      {
        send: [
          [
            ["key_1", "value_1"],
            ["user", "bkthomps"],
          ],
          [
            ["key_2", "value_2"],
            ["user", "bkthomps"],
          ],
        ],
        overall: "OK",
        // The 5 per second is not evaluated (and not charged): it still has 4.
        statuses: [
          ["OK", null, 0],
          ["OK", "10/SECOND", 9],
        ],
      },
      {
        send: [
          [
            ["key_1", "value_1"],
            ["user", "bkthomps"],
          ],
        ],
        overall: "OK",
        statuses: [["OK", "5/SECOND", 3]],
      },
    ],
  },
];
