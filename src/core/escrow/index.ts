// Public surface of strict mode's core: the bank, the holder, and their messages.

export { KeyBank } from "./bank.ts";
export { type DenyReason, type HolderDecision, KeyHolder } from "./holder.ts";
export {
  bankHoldUs,
  CLOCK_RATE_PPM,
  DRIFT_MARGIN_PPM,
  type EscrowGrant,
  type EscrowRequest,
  GRANTABLE_PARTS,
  LEASE_BOUNDS,
  SHARE_PARTS,
  strictRateProblem,
  validateGrant,
  validateRequest,
} from "./shares.ts";
