// The integer fields of a Consume/Query JSON body, read exactly from their text before
// protobuf-es parses the body.
//
// The ProtoJSON spec (protobuf.dev/programming-guides/json, "Representation of each type", rows
// int32/fixed32/uint32 and int64/fixed64/uint64): either numbers or strings are accepted, empty
// strings are invalid, and exponent notation (such as 1e2) is accepted in both quoted and
// unquoted forms. The conformance suite (protobuf's conformance/binary_json_conformance_suite.cc)
// pins the edges: 1e5 and 100000.000 are valid integers (Int32FieldExponentialFormat,
// Int32FieldFloatTrailingZero); 0.5 is refused (*FieldNotInteger), so are values out of the
// type's range (*FieldTooLarge), "3x3" (*FieldNotNumber), a plus sign and leading zeros, and a
// string follows the same syntax as a number (Int32FieldLeadingSpace: " 1" is refused).
//
// protobuf-es alone departs from that in both directions: it reads a string with `Number()` or
// `BigInt()`, so "0x10", "0b1", "+1" and "01" pass as 16, 1, 1 and 1, while a quoted "1e1" for a
// uint64 is refused as "out of range"; and a JSON number above 2^53 reaches it already rounded
// (9007199254740993 becomes ...992). So each integer field is checked here on its source text
// (the JSON number grammar of RFC 8259, quoted or not), its exact value computed with BigInt,
// and the body handed on with that value as a decimal string, which protobuf-es reads exactly.
// Its range within the type is refused here naming the field; the limits a decision puts on it
// (cost at least 1 and within the capacity, inline limit bounds) are validate-request.ts's.
// A body that is not JSON is handed on untouched, for protobuf-es to refuse.

import { fail, ok, type Result } from "../core/result.ts";

type Shape =
  | { readonly kind: "object"; readonly fields: Readonly<Record<string, { readonly name: string; readonly shape: Shape }>> }
  | { readonly kind: "array"; readonly of: Shape }
  | { readonly kind: "uint32" | "uint64" };

const UINT32: Shape = { kind: "uint32" };
const UINT64: Shape = { kind: "uint64" };
/** JSON accepts the lowerCamelCase name and the proto field name; errors use the proto name, as validate-request.ts does. */
const both = (json: string, proto: string, shape: Shape) => ({ [json]: { name: proto, shape }, [proto]: { name: proto, shape } });

const INLINE_LIMIT: Shape = {
  kind: "object",
  fields: {
    capacity: { name: "capacity", shape: UINT64 },
    ...both("refillTokens", "refill_tokens", UINT64),
    ...both("refillPeriodMs", "refill_period_ms", UINT64),
  },
};
const BUCKET: Shape = { kind: "object", fields: { cost: { name: "cost", shape: UINT32 }, limit: { name: "limit", shape: INLINE_LIMIT } } };
const DECISION: Shape = { kind: "object", fields: { buckets: { name: "buckets", shape: { kind: "array", of: BUCKET } } } };
/** ConsumeRequest and QueryRequest: the integer fields sit at the same places in both. */
const REQUEST: Shape = { kind: "object", fields: { decisions: { name: "decisions", shape: { kind: "array", of: DECISION } } } };

const MAX = { uint32: 4_294_967_295n, uint64: 18_446_744_073_709_551_615n } as const;

/** Thrown inside the scan: the text is not JSON (protobuf-es will say so). */
class NotJson extends Error {}
/** Thrown inside the scan: an integer field as refused. */
class BadInteger extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(problem);
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERAL = /true|false|null/y;
/** Digits that every JSON parser reads exactly (below 2^53), without sign, fraction or exponent. */
const PLAIN = /^(?:0|[1-9]\d{0,14})$/;
const NUMBER_PARTS = /^(-?)(0|[1-9]\d*)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * The exact value of a decimal number's text, or why there is none. "too large" is decided from
 * the digit count alone (beyond any 64-bit value), so "1e999999999" never builds a
 * billion-digit BigInt.
 */
function exactWhole(text: string): bigint | "not a number" | "not whole" | "too large" {
  const m = NUMBER_PARTS.exec(text);
  if (m === null) return "not a number";
  const [, sign, int = "", frac = "", exp = "0"] = m;
  const digits = (int + frac).replace(/^0+/, "");
  if (digits === "") return 0n;
  const shift = BigInt(exp) - BigInt(frac.length);
  let magnitude: bigint;
  if (shift >= 0n) {
    if (BigInt(digits.length) + shift > 21n) return "too large"; // 10^20 > 2^64
    magnitude = BigInt(digits) * 10n ** shift;
  } else {
    const drop = -shift;
    if (drop > BigInt(digits.length) || !/^0*$/.test(digits.slice(digits.length - Number(drop)))) return "not whole";
    magnitude = BigInt(digits.slice(0, digits.length - Number(drop)) || "0");
  }
  return sign === "-" ? -magnitude : magnitude;
}

class Scan {
  pos = 0;
  readonly #path: (string | number)[] = [];
  readonly replacements: { start: number; end: number; text: string }[] = [];

  constructor(readonly text: string) {}

  #match(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (m === null) return undefined;
    this.pos = re.lastIndex;
    return m[0];
  }

  #ws(): void {
    const t = this.text;
    let i = this.pos;
    for (let c = t.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = t.charCodeAt(++i));
    this.pos = i;
  }

  #peek(): string {
    return this.text[this.pos] ?? "";
  }

  #expect(c: string): void {
    if (this.text[this.pos] !== c) throw new NotJson();
    this.pos++;
  }

  /** A string token, decoded. A loop over char codes: the regex took most of the scan's time on long keys. */
  #string(): string {
    const t = this.text;
    const start = this.pos;
    if (t.charCodeAt(start) !== 0x22) throw new NotJson();
    let escaped = false;
    let i = start + 1;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (Number.isNaN(c) || c < 0x20) throw new NotJson();
      if (c === 0x5c) {
        escaped = true;
        i++;
      }
      i++;
    }
    this.pos = i + 1;
    // Escapes are rare in field names and numbers; JSON.parse decodes (and checks) them when present.
    if (!escaped) return t.slice(start + 1, i);
    try {
      return JSON.parse(t.slice(start, i + 1)) as string;
    } catch {
      throw new NotJson();
    }
  }

  /** Skips any value without recursion (unknown fields may nest deeply). */
  #skip(): void {
    let depth = 0;
    do {
      this.#ws();
      const c = this.#peek();
      if (c === "{" || c === "[") {
        depth++;
        this.pos++;
      } else if (c === "}" || c === "]") {
        if (depth === 0) throw new NotJson();
        depth--;
        this.pos++;
      } else if (c === "," || c === ":") this.pos++;
      else if (c === '"') this.#string();
      else if (this.#match(NUMBER) === undefined && this.#match(LITERAL) === undefined) throw new NotJson();
    } while (depth > 0);
  }

  value(shape: Shape | undefined): void {
    this.#ws();
    if (shape === undefined) this.#skip();
    else if (shape.kind === "object") this.#object(shape);
    else if (shape.kind === "array") this.#array(shape.of);
    else this.#integer(shape.kind);
    this.#ws();
  }

  /** `null` for a message or a list: unset. */
  #null(): boolean {
    if (!this.text.startsWith("null", this.pos)) return false;
    this.pos += 4;
    return true;
  }

  /** The field being read, as validate-request.ts names fields (`decisions[0].buckets[1].cost`). */
  #field(): string {
    let out = "";
    for (const p of this.#path) out += typeof p === "number" ? `[${p}]` : out === "" ? p : `.${p}`;
    return out;
  }

  #object(shape: Shape & { kind: "object" }): void {
    if (this.#null()) return;
    this.#expect("{");
    this.#ws();
    if (this.#peek() === "}") {
      this.pos++;
      return;
    }
    for (;;) {
      this.#ws();
      const key = this.#string();
      this.#ws();
      this.#expect(":");
      const known = Object.hasOwn(shape.fields, key) ? shape.fields[key] : undefined;
      if (known === undefined) this.value(undefined);
      else {
        this.#path.push(known.name);
        this.value(known.shape);
        this.#path.pop();
      }
      if (this.#peek() === "}") {
        this.pos++;
        return;
      }
      this.#expect(",");
    }
  }

  #array(of: Shape): void {
    if (this.#null()) return;
    this.#expect("[");
    this.#ws();
    if (this.#peek() === "]") {
      this.pos++;
      return;
    }
    const at = this.#path.length;
    for (let i = 0; ; i++) {
      this.#path[at] = i;
      this.value(of);
      if (this.#peek() === "]") {
        this.#path.length = at;
        this.pos++;
        return;
      }
      this.#expect(",");
    }
  }

  #integer(kind: "uint32" | "uint64"): void {
    const start = this.pos;
    let text: string;
    if (this.#peek() === '"') text = this.#string();
    else {
      const literal = this.#match(LITERAL);
      if (literal === "null") return; // unset: the field's default
      const number = literal === undefined ? this.#match(NUMBER) : undefined;
      if (number === undefined) {
        if (literal === undefined) this.#skip(); // an object or array: still JSON, still refused
        text = this.text.slice(start, this.pos);
        throw new BadInteger(this.#field(), `must be a whole number in 0..${MAX[kind]} (${kind}), got ${shown(text)}`);
      }
      text = number;
    }
    // The common case, plain digits that any parser reads exactly: checked, left as they are.
    if (PLAIN.test(text) && (kind === "uint64" || Number(text) <= 4_294_967_295)) return;
    const exact = exactWhole(text);
    const raw = this.text.slice(start, this.pos);
    if (typeof exact !== "bigint" || exact < 0n || exact > MAX[kind]) {
      const hint = exact === "not a number" ? " written in decimal (ProtoJSON: no hex, sign or leading zeros)" : "";
      throw new BadInteger(this.#field(), `must be a whole number in 0..${MAX[kind]} (${kind})${hint}, got ${shown(raw)}`);
    }
    this.replacements.push({ start, end: this.pos, text: `"${exact}"` });
  }
}

function shown(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/**
 * Checks the integer fields of a Consume/Query JSON body: the body with each as its exact
 * decimal string, or the first field refused (docs/conventions.md's Result). Text that is not
 * JSON is returned as it is.
 */
export function exactIntegerFields(text: string): Result<string> {
  const scan = new Scan(text);
  try {
    scan.value(REQUEST);
    if (scan.pos !== text.length) return ok(text);
  } catch (err) {
    if (err instanceof BadInteger) return fail(err.field, err.problem);
    if (err instanceof NotJson) return ok(text);
    throw err;
  }
  if (scan.replacements.length === 0) return ok(text);
  let out = "";
  let at = 0;
  for (const r of scan.replacements) {
    out += text.slice(at, r.start) + r.text;
    at = r.end;
  }
  return ok(out + text.slice(at));
}
