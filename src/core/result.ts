// The one result shape of the pure core: an answer, or what is wrong with the input. The core
// never throws on bad input (a throw would be a bug); every function that judges input returns
// a Result, and the edge turns a failure into its own error (src/server/errors.ts) once.

/** What is wrong with an input: the field at fault (a path such as `keys[1].entries[0][3]`) and why. */
export interface FieldError<F extends string = string> {
  readonly field: F;
  readonly message: string;
}

export type Result<T, E = FieldError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function fail<F extends string>(field: F, message: string): { readonly ok: false; readonly error: FieldError<F> } {
  return { ok: false, error: { field, message } };
}
