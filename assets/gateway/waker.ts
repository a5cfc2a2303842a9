import type { ControlStatus } from '../../lib/gpu-control/protocol';
import { ControlRefused, isDispatchable, type FleetView } from './fleet-view';
import type { Metrics } from './metrics';

export type WakeOutcome =
  | { readonly kind: 'raised' | 'enough' | 'unknown' }
  | { readonly kind: 'refused'; readonly code: string; readonly message: string }
  | { readonly kind: 'error'; readonly message: string };

/** A refused raise is not asked again for this long, unless the budget shows it may pass now. */
const REFUSAL_BACKOFF_MS = 15_000;

/** The budget allows raising: not spent, or an operator override for the month. */
export function budgetAllows(status: ControlStatus | null): boolean {
  return !status || !status.budget.spent || status.budget.overridden;
}

/**
 * Raises the fleet's capacity for waiting work: one set-capacity call however many requests
 * ask at once (single flight), and only when the target is below what the work needs. It
 * never lowers capacity: idle boxes leave by themselves (their idle watcher).
 */
export class Waker {
  private inFlight: Promise<WakeOutcome> | null = null;
  private lastRefusal: (WakeOutcome & { kind: 'refused'; at: number }) | null = null;
  private lastFailure: string | null = null;
  /** A raise waiting for its first new ready box: the wake-to-ready measure. */
  private waiting: { at: number; readyBefore: number } | null = null;

  constructor(
    private readonly fleet: FleetView,
    private readonly metrics: Metrics,
    private readonly log: (line: string) => void,
  ) {
    fleet.onStatus((status) => this.observe(status));
  }

  /** Why the last raise did not happen (budget spent, out of range, control unreachable), or null. */
  get obstacle(): string | null {
    return this.lastRefusal?.message ?? this.lastFailure;
  }

  get refusal(): { code: string; message: string } | null {
    return this.lastRefusal;
  }

  /** Capacity `desired` (clamped to [1, maxInstances]) from the fleet status the caller refreshed. */
  ensure(desired: number, reason: string): Promise<WakeOutcome> {
    if (this.inFlight) return this.inFlight;
    this.inFlight = this.decide(desired, reason).finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async decide(desired: number, reason: string): Promise<WakeOutcome> {
    let status = this.fleet.status;
    if (!status) return { kind: 'unknown' };
    const refusal = this.lastRefusal;
    if (refusal && Date.now() - refusal.at < REFUSAL_BACKOFF_MS) {
      if (refusal.code !== 'BUDGET_SPENT') return refusal;
      // An operator override may have come since: the budget in a fresh status says.
      status = await this.fleet.fresh(0);
      if (!budgetAllows(status)) return refusal;
    }
    const capacity = Math.min(Math.max(desired, 1), status.maxInstances);
    if (status.targetCapacity >= capacity) return { kind: 'enough' };
    return this.raise(capacity, reason, this.fleet.dispatchable().length);
  }

  private async raise(capacity: number, reason: string, readyBefore: number): Promise<WakeOutcome> {
    const at = Date.now();
    try {
      await this.fleet.call({ action: 'set-capacity', capacity, reason });
      this.log(`wake: capacity ${capacity} (${reason})`);
      this.lastRefusal = null;
      this.lastFailure = null;
      this.waiting ??= { at, readyBefore };
      await this.metrics.count('wakes');
      return { kind: 'raised' };
    } catch (error) {
      if (error instanceof ControlRefused) {
        this.log(`wake refused (${error.code}): ${error.message}`);
        this.lastRefusal = { kind: 'refused', code: error.code, message: error.message, at };
        return this.lastRefusal;
      }
      this.lastFailure = `the control function could not be called: ${(error as Error).message}`;
      this.log(`wake failed: ${this.lastFailure}`);
      return { kind: 'error', message: this.lastFailure };
    }
  }

  private observe(status: ControlStatus): void {
    const waiting = this.waiting;
    if (!waiting) return;
    const ready = status.instances.filter(isDispatchable).length;
    if (ready <= waiting.readyBefore) return;
    this.waiting = null;
    const seconds = (Date.now() - waiting.at) / 1000;
    this.log(`wake-to-ready ${seconds.toFixed(1)} s`);
    this.metrics.wakeToReady(seconds).catch((error: Error) => this.log(`metrics: ${error.message}`));
  }
}
