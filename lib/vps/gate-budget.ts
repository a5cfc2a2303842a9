/**
 * The time budget of a health-gated deploy inside one Lambda run (the Provider framework's
 * isComplete handler): the gate's `up --wait` and, when it fails, the rollback's `up --wait`
 * of the previous release must both fit, with room for SSH, the link switches and the log tails.
 */

/** The isComplete (and onEvent) Lambda timeout: Lambda's maximum. */
export const GATE_LAMBDA_TIMEOUT_SECONDS = 900;

/** Extra time over `--wait-timeout` for compose to create containers before it starts waiting. */
export const UP_GRACE_SECONDS = 180;

/** SSH connect, link switches, diagnosis log tails and the result report, around the two waits. */
export const GATE_OVERHEAD_SECONDS = 60;

/** The largest `vps.convergeTimeoutSeconds` whose worst case (gate + rollback) fits one run: 240 s. */
export const MAX_CONVERGE_TIMEOUT_SECONDS = Math.floor((GATE_LAMBDA_TIMEOUT_SECONDS - GATE_OVERHEAD_SECONDS) / 2) - UP_GRACE_SECONDS;

/** The longest a gate with rollback may take, for `convergeSeconds` per `up --wait`. */
export function worstCaseGateSeconds(convergeSeconds: number): number {
  return 2 * (convergeSeconds + UP_GRACE_SECONDS) + GATE_OVERHEAD_SECONDS;
}
