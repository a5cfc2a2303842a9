/*
 * The dispatcher: held prompts -> ready boxes, wake and scale-out, leases, hold timeouts.
 *
 * SCALE-DOWN AUTHORITY PROTOCOL (issue 13 item 4). The box's idle watcher is the only thing
 * that scales a box in; the gateway only keeps it from doing so under work, with a lease that
 * lapses by itself, so both failure directions are safe:
 *   - Lease: while the gateway holds queued or running work for an instance it sets that
 *     instance's BUSY_UNTIL_TAG to now + LEASE_SECONDS (180) through the control function's
 *     `lease`, renewed every LEASE_RENEW_SECONDS (60). The watcher counts a minute as busy while
 *     the lease is unexpired and ignores an expired one, so an unreachable VPS (or a dead
 *     gateway) holds a box for at most LEASE_SECONDS: then it scales in as before.
 *   - Box, leaving: (B1) tag itself comfyui:leaving, (B2) read its lease again; if the lease is
 *     unexpired it removes the leaving tag and stays; otherwise (B3) it lowers the target and
 *     terminates itself.
 *   - Gateway, dispatching to a box for the first time in a pass: (G1) lease it, (G2) read the
 *     fleet status written after the lease (every control answer carries it) and dispatch only
 *     if the box is running, ready and not leaving. It never dispatches to a leaving box.
 *   - Why no prompt reaches a box that leaves: if the box's B2 comes after G1, it sees the lease
 *     and stays. Otherwise B2 came before G1, so B1 came before G1 < G2, and the gateway reads
 *     the leaving tag at G2 and does not dispatch. Both may back off at once (the box stays,
 *     the gateway skipped it): the next pass leases again, finds no leaving tag and dispatches.
 *   - When a box vanishes anyway (Spot interruption, crash, a lease that lapsed while the
 *     control function was unreachable), job-tracker.ts sees it gone and the prompt is held
 *     again and resubmitted with the same prompt_id (at most MAX_ATTEMPTS submissions).
 * The gateway never lowers capacity (except gpu_stop): an idle box leaves on its own.
 */
import { EventEmitter } from 'node:events';
import type { ControlInstance, ControlStatus } from '../../lib/gpu-control/protocol';
import { postPrompt, Unreachable } from './comfy-client';
import { isLive, type FleetView } from './fleet-view';
import { FALLBACK_TARGET, type JobRecord, type JobStore } from './job-store';
import type { JobTracker } from './job-tracker';
import type { Leases } from './leases';
import type { Metrics } from './metrics';
import type { GatewaySettings } from './settings';
import type { Upstream } from './upstream';
import { budgetAllows, type Waker } from './waker';

/** What became of a held prompt's dispatch (the HTTP front end waits for it briefly). */
export type DispatchOutcome = { readonly kind: 'submitted'; readonly instanceId: string } | { readonly kind: 'refused'; readonly comfyBody: unknown } | { readonly kind: 'failed'; readonly error: string };

/** Hooks into the WebSocket relay. */
export interface RelayHooks {
  /** Opens the client's socket to that ComfyUI before its prompt is submitted there (no early message lost). */
  prepare(clientId: string, target: string, base: string): Promise<void>;
  /** Held plus active prompts changed (ComfyUI's status message, queue_remaining). */
  queueChanged(remaining: number): void;
}

export type DispatcherSettings = Pick<
  GatewaySettings,
  'promptsPerInstance' | 'holdTimeoutSeconds' | 'pollIntervalMs' | 'statusIntervalMs' | 'fallbackComfyuiUrl'
>;

export class Dispatcher {
  readonly events = new EventEmitter();
  /** Prompts in flight per box (and the fallback), as of the last pass: the least-loaded choice. */
  readonly load = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private lastRemaining = -1;
  /** Passes started so far; each emits 'pass-done' with its number when it ends. */
  passesStarted = 0;

  constructor(
    private readonly store: JobStore,
    private readonly fleet: FleetView,
    private readonly waker: Waker,
    private readonly leases: Leases,
    private readonly tracker: JobTracker,
    private readonly upstream: Upstream,
    private readonly metrics: Metrics,
    private readonly relay: RelayHooks,
    private readonly settings: DispatcherSettings,
    private readonly log: (line: string) => void,
  ) {
    this.events.setMaxListeners(0);
  }

  start(): void {
    this.stopped = false;
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Runs a pass now (or right after the current one). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const pass = ++this.passesStarted;
    this.running = this.pass()
      .catch((error: Error) => this.log(`dispatcher pass failed: ${error.stack ?? error.message}`))
      .finally(() => {
        this.running = null;
        this.events.emit('pass-done', pass);
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.kick();
        } else {
          this.timer = setTimeout(() => this.kick(), this.settings.pollIntervalMs);
        }
      });
  }

  /** Why held prompts cannot run now, for 503 bodies and failures (budget, no capacity, control unreachable). */
  obstacle(status: ControlStatus | null = this.fleet.status): string | null {
    if (status && !budgetAllows(status)) {
      return `the month's GPU allowance is spent ($${status.budget.usedUsd.toFixed(2)} of $${status.budget.allowanceUsd.toFixed(2)}); an operator can allow more with gpu start --over-budget`;
    }
    if (this.waker.obstacle) return this.waker.obstacle;
    if (!status) return 'the fleet status could not be read from the control function';
    const live = status.instances.filter(isLive);
    if (status.targetCapacity > 0 && live.length === 0) return `the fleet's target is ${status.targetCapacity} but no instance has launched (no Spot capacity for the configured types?)`;
    if (live.length > 0 && !live.some((i) => i.ready && !i.leaving)) return `${live.length} instance(s) launched, ComfyUI not ready yet`;
    return null;
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    const [heldIds, activeIds] = await Promise.all([this.store.heldIds(), this.store.activeIds()]);
    if (heldIds.length + activeIds.length === 0) return this.queueChanged(0);
    let status: ControlStatus | null;
    try {
      status = await this.fleet.fresh(this.settings.statusIntervalMs);
    } catch (error) {
      this.log(`fleet status: ${(error as Error).message}`);
      status = null;
    }
    if (status) this.upstream.retain(status.instances.filter(isLive).map((i) => i.instanceId));
    await this.tracker.track(await this.store.getMany(activeIds), status, now);

    const active = await this.store.getMany(await this.store.activeIds());
    const onBoxes = (jobs: readonly JobRecord[]) => [...new Set(jobs.map((j) => j.instanceId).filter((id): id is string => !!id && id !== FALLBACK_TARGET))];
    await this.leases.renew(onBoxes(active), now);

    let held = await this.store.getMany(await this.store.heldIds());
    held = await this.expireHeld(held, now);
    held = await this.wake(held, active);
    await this.dispatch(held, active);
    const counts = await this.store.counts();
    this.queueChanged(counts.held + counts.active);
  }

  private queueChanged(remaining: number): void {
    if (remaining === this.lastRemaining) return;
    this.lastRemaining = remaining;
    this.relay.queueChanged(remaining);
  }

  /** Held past HOLD_TIMEOUT_SECONDS: to the fallback when there is one, else failed with the reason. */
  private async expireHeld(held: JobRecord[], now: number): Promise<JobRecord[]> {
    const expired = held.filter((job) => !job.useFallback && now - job.heldSince >= this.settings.holdTimeoutSeconds * 1000);
    if (expired.length === 0) return held;
    const reason = this.obstacle();
    for (const job of expired) await this.noGpu(job, `no GPU became ready within ${this.settings.holdTimeoutSeconds} s${reason ? `: ${reason}` : ''}`);
    return this.reread(held);
  }

  private async reread(jobs: readonly JobRecord[]): Promise<JobRecord[]> {
    return (await this.store.getMany(jobs.map((j) => j.promptId))).filter((j) => j.state === 'held');
  }

  /** Raises capacity for the work (one instance per PROMPTS_PER_INSTANCE); a budget refusal with no box left ends held prompts at once. */
  private async wake(held: JobRecord[], active: readonly JobRecord[]): Promise<JobRecord[]> {
    const onGpu = held.filter((j) => !j.useFallback).length + active.filter((j) => j.instanceId !== FALLBACK_TARGET).length;
    if (onGpu === 0) return held;
    const outcome = await this.waker.ensure(Math.ceil(onGpu / this.settings.promptsPerInstance), `${onGpu} prompt(s) held or running`);
    if (outcome.kind !== 'refused' || outcome.code !== 'BUDGET_SPENT') return held;
    if ((this.fleet.status?.instances ?? []).some((i) => isLive(i) && !i.leaving)) return held; // the boxes there still serve them
    for (const job of held) if (!job.useFallback) await this.noGpu(job, `no GPU can be woken: ${outcome.message}`);
    return this.reread(held);
  }

  private async noGpu(job: JobRecord, reason: string): Promise<void> {
    if (this.settings.fallbackComfyuiUrl) {
      this.log(`${job.promptId} goes to the fallback: ${reason}`);
      await this.store.update(job.promptId, { useFallback: true });
      return;
    }
    await this.store.finish(job.promptId, 'failed', { error: reason });
    await this.metrics.count('jobsFailed');
    this.log(`${job.promptId} failed: ${reason}`);
    this.events.emit('settled', job.promptId, { kind: 'failed', error: reason } satisfies DispatchOutcome);
  }

  /** Each held prompt to the least-loaded ready box with room (PROMPTS_PER_INSTANCE in flight each). */
  private async dispatch(held: readonly JobRecord[], active: readonly JobRecord[]): Promise<void> {
    const load = this.load;
    load.clear();
    for (const job of active) if (job.instanceId) load.set(job.instanceId, (load.get(job.instanceId) ?? 0) + 1);
    const withWork = () => [...load.keys()].filter((id) => id !== FALLBACK_TARGET);
    let candidates = this.fleet.dispatchable();
    const confirmed = new Set<string>();
    for (const job of held) {
      if (job.useFallback && this.settings.fallbackComfyuiUrl) {
        if ((await this.submit(job, FALLBACK_TARGET, this.settings.fallbackComfyuiUrl)) === 'unreachable') {
          await this.store.finish(job.promptId, 'failed', { error: `no GPU could take it and the fallback ComfyUI (FALLBACK_COMFYUI_URL) did not answer` });
          await this.metrics.count('jobsFailed');
        }
        continue;
      }
      for (;;) {
        const room = candidates.filter((i) => (load.get(i.instanceId) ?? 0) < this.settings.promptsPerInstance);
        if (room.length === 0) break;
        const pick = room.reduce((a, b) => ((load.get(b.instanceId) ?? 0) < (load.get(a.instanceId) ?? 0) ? b : a));
        const ok = confirmed.has(pick.instanceId) || (await this.leases.leaseThenConfirm(pick.instanceId, withWork()));
        const base = ok ? await this.baseUrl(pick) : null;
        const result = base ? await this.submit(job, pick.instanceId, base) : 'unreachable';
        if (result === 'unreachable') {
          candidates = candidates.filter((i) => i.instanceId !== pick.instanceId);
          continue;
        }
        confirmed.add(pick.instanceId);
        if (result === 'submitted') load.set(pick.instanceId, (load.get(pick.instanceId) ?? 0) + 1);
        break;
      }
    }
  }

  private async baseUrl(instance: ControlInstance): Promise<string | null> {
    try {
      return await this.upstream.baseUrl(instance);
    } catch (error) {
      this.log(`no link to ${instance.instanceId}: ${(error as Error).message}`);
      return null;
    }
  }

  private async submit(job: JobRecord, target: string, base: string): Promise<'submitted' | 'refused' | 'unreachable'> {
    const request = (await this.store.get(job.promptId))?.request;
    if (!request) return 'refused'; // removed meanwhile (POST /queue {delete})
    const clientId = request.client_id;
    if (clientId) await this.relay.prepare(clientId, target, base);
    const body: Record<string, unknown> = { prompt: request.prompt, prompt_id: job.promptId, number: job.number };
    if (clientId !== undefined) body.client_id = clientId;
    if (request.extra_data !== undefined) body.extra_data = request.extra_data;
    let answer: { status: number; body: unknown };
    try {
      answer = await postPrompt(base, body);
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
      this.log(`${job.promptId} not submitted to ${target}: ${error.message}`);
      return 'unreachable';
    }
    const attempts = job.attempts + 1;
    if (answer.status === 200) {
      await this.store.markSubmitted(job.promptId, target, attempts);
      this.log(`${job.promptId} submitted to ${target} (attempt ${attempts})`);
      this.events.emit('settled', job.promptId, { kind: 'submitted', instanceId: target } satisfies DispatchOutcome);
      return 'submitted';
    }
    const refusal = answer.body as { error?: { message?: string; details?: string } | string };
    const why = typeof refusal.error === 'string' ? refusal.error : [refusal.error?.message, refusal.error?.details].filter(Boolean).join(': ');
    await this.store.finish(job.promptId, 'failed', { error: `ComfyUI refused the prompt: ${why || 'invalid prompt'}`, comfyRefusal: answer.body, attempts });
    await this.metrics.count('jobsFailed');
    this.events.emit('settled', job.promptId, { kind: 'refused', comfyBody: answer.body } satisfies DispatchOutcome);
    return 'refused';
  }
}
