/**
 * The time budget of a health-gated deploy inside one Lambda run (the Provider framework's
 * isComplete handler): the gate's `up --wait` and, when it fails, the rollback's `up --wait`
 * of the previous release must both fit, with room for SSH, the link switches and the log tails.
 */

/** The isComplete (and onEvent) Lambda timeout: Lambda's maximum. */
export const GATE_LAMBDA_TIMEOUT_SECONDS = 900;

/**
 * Extra time over `--wait-timeout` for compose to (re)create containers before it starts
 * waiting; the images are already on the VPS, so this is container churn only.
 */
export const UP_GRACE_SECONDS = 120;

/** Bound on reading the failing services' state and log tails after a failed gate. */
export const DIAGNOSE_SECONDS = 90;

/**
 * Everything else in the same run, each bounded: two SSH connections (20 s), the pull-status
 * probe (30 s), the secret and bundle reads (10 s), the state read, link switches, prune and
 * owner record (30 s), and the diagnosis. The isComplete run takes the lock without waiting.
 */
export const GATE_OVERHEAD_SECONDS = 20 + 30 + 10 + 30 + DIAGNOSE_SECONDS;

/** The largest `vps.convergeTimeoutSeconds` whose worst case (gate + rollback) fits one run: 240 s. */
export const MAX_CONVERGE_TIMEOUT_SECONDS = Math.floor((GATE_LAMBDA_TIMEOUT_SECONDS - GATE_OVERHEAD_SECONDS) / 2) - UP_GRACE_SECONDS;

/** The two `up --wait` runs of a failed gate (the release, then the restored one), each with its grace. */
export function gateAndRollbackSeconds(convergeSeconds: number): number {
  return 2 * (convergeSeconds + UP_GRACE_SECONDS);
}

/** The longest a gate with rollback may take in one run, for `convergeSeconds` per `up --wait`. */
export function worstCaseGateSeconds(convergeSeconds: number): number {
  return gateAndRollbackSeconds(convergeSeconds) + GATE_OVERHEAD_SECONDS;
}
