import type { ControlClient, ControlInstance, ControlRequest, ControlResponse, ControlStatus } from '../../lib/gpu-control/protocol';

/** Instance states in which a box can hold our work (EC2 names). */
const LIVE_STATES = new Set(['pending', 'running']);

/** A box that may receive prompts: running, its ComfyUI ready, not leaving the fleet. */
export function isDispatchable(instance: ControlInstance): boolean {
  return instance.state === 'running' && instance.ready && !instance.leaving;
}

/** A box that still exists for the work on it (a leaving box finishes what it runs). */
export function isLive(instance: ControlInstance): boolean {
  return LIVE_STATES.has(instance.state);
}

/** The control function's error, as thrown by FleetView.call. */
export class ControlRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ControlRefused';
  }
}

/**
 * The last fleet status the gateway saw, refreshed through the control client. Every control
 * answer carries the status after it, so set-capacity and lease refresh it too; concurrent
 * refreshes share one call.
 */
export class FleetView {
  private current: ControlStatus | null = null;
  private at = 0;
  private refreshing: Promise<ControlStatus> | null = null;
  private readonly listeners: Array<(status: ControlStatus) => void> = [];

  constructor(private readonly control: ControlClient) {}

  get status(): ControlStatus | null {
    return this.current;
  }

  ageMs(now = Date.now()): number {
    return this.current ? now - this.at : Number.POSITIVE_INFINITY;
  }

  /** The next fresh() reads the fleet again, whatever its age. */
  invalidate(): void {
    this.at = 0;
  }

  onStatus(listener: (status: ControlStatus) => void): void {
    this.listeners.push(listener);
  }

  /** Calls the control function; stores the status it answers with; throws ControlRefused on ok:false. */
  async call(request: ControlRequest): Promise<ControlResponse & { ok: true }> {
    const response = await this.control.call(request);
    if (response.status) this.store(response.status);
    if (!response.ok) throw new ControlRefused(response.code, response.message);
    return response;
  }

  /** The status, refreshed when older than maxAgeMs. */
  async fresh(maxAgeMs: number): Promise<ControlStatus> {
    if (this.current && this.ageMs() <= maxAgeMs) return this.current;
    this.refreshing ??= this.call({ action: 'status' })
      .then((r) => {
        if (!r.status) throw new Error('the control function answered status without a status');
        return r.status;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  dispatchable(): ControlInstance[] {
    return (this.current?.instances ?? []).filter(isDispatchable);
  }

  private store(status: ControlStatus): void {
    this.current = status;
    this.at = Date.now();
    for (const listener of this.listeners) listener(status);
  }
}
