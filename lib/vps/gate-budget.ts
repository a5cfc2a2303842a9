/**
 * The time budget of a health-gated deploy inside one Lambda run (the Provider framework's
 * isComplete handler): the gate's `up --wait` and, when it fails, the rollback's `up --wait`
 * of the previous release must both fit, with room for SSH, the link switches and the log tails.
 * Each bound is enforced on the VPS (coreutils `timeout` around every docker call of the remote
 * gate step, deployer-gate.ts) and on the client (ssh-session.ts cuts a connection that
 * outlives a command's bound), so the budget holds even when the network does not.
 */

/** The isComplete (and onEvent) Lambda timeout: Lambda's maximum. */
export const GATE_LAMBDA_TIMEOUT_SECONDS = 900;

/**
 * Extra time over `--wait-timeout` for compose to (re)create containers before it starts
 * waiting; the images are already on the VPS, so this is container churn only.
 */
export const UP_GRACE_SECONDS = 120;

/** Bound on reading the failing services' state and log tails after a failed gate (20 + 20 + 50 s in the remote step). */
export const DIAGNOSE_SECONDS = 90;

/** The remote gate step's own work besides docker: link switches, prune, owner and result files. */
export const STEP_OVERHEAD_SECONDS = 15;

/**
 * Everything else in the same run, each bounded: two SSH connections (20 s), the pull-status
 * probe (30 s), the secret and bundle reads (10 s), the state read (15 s), the remote step's
 * link switches, prune and owner record, and the diagnosis. The isComplete run takes the lock
 * without waiting.
 */
export const GATE_OVERHEAD_SECONDS = 20 + 30 + 10 + 15 + STEP_OVERHEAD_SECONDS + DIAGNOSE_SECONDS;

/** The largest `vps.convergeTimeoutSeconds` whose worst case (gate + rollback) fits one run: 240 s. */
export const MAX_CONVERGE_TIMEOUT_SECONDS = Math.floor((GATE_LAMBDA_TIMEOUT_SECONDS - GATE_OVERHEAD_SECONDS) / 2) - UP_GRACE_SECONDS;

/** The two `up --wait` runs of a failed gate (the release, then the restored one), each with its grace. */
export function gateAndRollbackSeconds(convergeSeconds: number, graceSeconds = UP_GRACE_SECONDS): number {
  return 2 * (convergeSeconds + graceSeconds);
}

/** The longest the remote gate step may run: both `up`s (or an `up` and a `down`), the diagnosis and its own work. */
export function gateStepSeconds(convergeSeconds: number, graceSeconds = UP_GRACE_SECONDS): number {
  return gateAndRollbackSeconds(convergeSeconds, graceSeconds) + DIAGNOSE_SECONDS + STEP_OVERHEAD_SECONDS;
}

/** The longest a gate with rollback may take in one run, for `convergeSeconds` per `up --wait`. */
export function worstCaseGateSeconds(convergeSeconds: number): number {
  return gateAndRollbackSeconds(convergeSeconds) + GATE_OVERHEAD_SECONDS;
}
