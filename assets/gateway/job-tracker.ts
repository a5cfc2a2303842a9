import type { ControlStatus } from '../../lib/gpu-control/protocol';
import { executionError, fetchHistory, fetchQueue, outputRefs, queueItemId, Unreachable, type HistoryEntry } from './comfy-client';
import { isLive } from './fleet-view';
import { FALLBACK_TARGET, type JobRecord, type JobStore } from './job-store';
import type { Metrics } from './metrics';
import type { OutputStore } from './output-store';
import type { Upstream } from './upstream';

export interface TrackerSettings {
  readonly maxAttempts: number;
  readonly unreachableGraceSeconds: number;
  readonly fallbackComfyuiUrl: string | null;
}

/**
 * Follows submitted prompts on their boxes: completion from ComfyUI's /history/{id} (the
 * outputs are copied then), failure from its status, and loss — the box gone from the fleet,
 * or unreachable past the grace period, or no longer knowing the prompt — which puts the job
 * back in the held queue for the next ready box (same prompt_id), at most MAX_ATTEMPTS times.
 */
export class JobTracker {
  constructor(
    private readonly store: JobStore,
    private readonly upstream: Upstream,
    private readonly outputs: OutputStore,
    private readonly metrics: Metrics,
    private readonly settings: TrackerSettings,
    private readonly log: (line: string) => void,
  ) {}

  /** One pass over the active jobs; `status` null means the fleet could not be read (nothing is declared lost by absence then). */
  async track(active: readonly JobRecord[], status: ControlStatus | null, now = Date.now()): Promise<void> {
    const byTarget = new Map<string, JobRecord[]>();
    for (const job of active) byTarget.set(job.instanceId ?? '', [...(byTarget.get(job.instanceId ?? '') ?? []), job]);
    await Promise.all([...byTarget].map(([target, jobs]) => this.trackTarget(target, jobs, status, now)));
  }

  private async trackTarget(target: string, jobs: JobRecord[], status: ControlStatus | null, now: number): Promise<void> {
    let base: string;
    if (target === FALLBACK_TARGET && this.settings.fallbackComfyuiUrl) {
      base = this.settings.fallbackComfyuiUrl;
    } else {
      const instance = status?.instances.find((i) => i.instanceId === target);
      if (status && (!instance || !isLive(instance))) {
        const why = `instance ${target} is gone (${instance ? instance.state : 'no longer in the fleet'})`;
        for (const job of jobs) await this.lost(job, why);
        return;
      }
      try {
        if (!instance) throw new Unreachable(`instance ${target} is not in the last fleet status`);
        base = await this.upstream.baseUrl(instance);
      } catch (error) {
        for (const job of jobs) await this.unreachable(job, target, error as Error, now);
        return;
      }
    }
    // The queue first, then each history: a prompt finishing in between shows in its history.
    let running: Set<string>;
    let queued: Set<string>;
    try {
      const queue = await fetchQueue(base);
      running = new Set(queue.running.map(queueItemId));
      queued = new Set(queue.pending.map(queueItemId));
    } catch (error) {
      for (const job of jobs) await this.unreachable(job, target, error as Error, now);
      return;
    }
    for (const job of jobs) {
      try {
        const entry = await fetchHistory(base, job.promptId);
        if (entry) await this.finished(job, base, entry);
        else if (running.has(job.promptId)) await this.seen(job, 'running');
        else if (queued.has(job.promptId)) await this.seen(job, 'submitted');
        else await this.lost(job, `ComfyUI on ${target} no longer knows it (restarted?)`);
      } catch (error) {
        await this.unreachable(job, target, error as Error, now);
      }
    }
  }

  private async seen(job: JobRecord, state: 'running' | 'submitted'): Promise<void> {
    if (job.state !== state || job.unreachableSince !== null) await this.store.update(job.promptId, { state, unreachableSince: null });
  }

  private async finished(job: JobRecord, base: string, entry: HistoryEntry): Promise<void> {
    if (entry.status?.status_str === 'error') {
      const error = executionError(entry);
      await this.store.finish(job.promptId, 'failed', { error, history: entry });
      await this.metrics.count('jobsFailed');
      this.log(`${job.promptId} failed on ${job.instanceId}: ${error}`);
      return;
    }
    const outputs = await this.outputs.copy(base, job.promptId, outputRefs(entry));
    await this.store.finish(job.promptId, 'completed', { history: entry, outputs, error: null });
    await this.metrics.count('jobsCompleted');
    this.log(`${job.promptId} completed on ${job.instanceId} (attempt ${job.attempts}, ${outputs.length} outputs)`);
  }

  private async unreachable(job: JobRecord, target: string, error: Error, now: number): Promise<void> {
    if (job.unreachableSince === null) {
      await this.store.update(job.promptId, { unreachableSince: now });
      this.log(`${job.promptId}: ComfyUI on ${target} did not answer (${error.message}); lost after ${this.settings.unreachableGraceSeconds} s`);
    } else if (now - job.unreachableSince >= this.settings.unreachableGraceSeconds * 1000) {
      await this.lost(job, `ComfyUI on ${target} did not answer for ${this.settings.unreachableGraceSeconds} s (${error.message})`);
    }
  }

  private async lost(job: JobRecord, why: string): Promise<void> {
    if (job.attempts >= this.settings.maxAttempts) {
      const error = `gave up after ${job.attempts} submissions (MAX_ATTEMPTS=${this.settings.maxAttempts}): ${why}`;
      await this.store.finish(job.promptId, 'failed', { error });
      await this.metrics.count('jobsFailed');
      this.log(`${job.promptId} failed: ${error}`);
      return;
    }
    await this.store.rehold(job, {});
    await this.metrics.count('jobsResubmitted');
    this.log(`${job.promptId} held again after attempt ${job.attempts}: ${why}`);
  }
}
