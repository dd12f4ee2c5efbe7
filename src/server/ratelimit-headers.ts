// RateLimit and RateLimit-Policy response headers (IETF httpapi "RateLimit header fields" draft,
// structured-field form): `RateLimit-Policy: "api";q=100;w=60` says the quota (q units per
// window of w seconds), `RateLimit: "api";r=42;t=12` what remains and in how many seconds it is
// whole again. For a tokenmesh bucket q is its capacity and w the time a refill takes to fill it
// from empty; t is the time until it is full. Used by /v1/check and by Envoy's answers.

export interface QuotaState {
  /** Policy or rule name. */
  readonly name: string;
  readonly quota: number;
  readonly windowSeconds: number;
  readonly remaining: number;
  readonly resetSeconds: number;
}

/** A structured-field string holds printable ASCII only, with `"` and `\` escaped. */
function sfString(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (code < 0x20 || code > 0x7e) out += "_";
    else if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else out += ch;
  }
  return `"${out}"`;
}

export function rateLimitHeaders(state: QuotaState): { readonly RateLimit: string; readonly "RateLimit-Policy": string } {
  const name = sfString(state.name);
  return {
    RateLimit: `${name};r=${state.remaining};t=${state.resetSeconds}`,
    "RateLimit-Policy": `${name};q=${state.quota};w=${state.windowSeconds}`,
  };
}

export const secondsUp = (us: number): number => Math.ceil(us / 1_000_000);
