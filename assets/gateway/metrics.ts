import type { Redis } from 'ioredis';
import type { GatewayMetrics } from '../../lib/gpu-control/protocol';

/** Counters since the last report, kept in Redis so a restart between two reports loses none. */
const COUNTERS = 'gw:metrics';
const WAKE_TO_READY = 'gw:metrics:wake-to-ready';

export type Counter = 'wakes' | 'jobsCompleted' | 'jobsFailed' | 'jobsResubmitted';

export class Metrics {
  constructor(private readonly redis: Redis) {}

  async count(counter: Counter, by = 1): Promise<void> {
    await this.redis.hincrby(COUNTERS, counter, by);
  }

  async wakeToReady(seconds: number): Promise<void> {
    await this.redis.rpush(WAKE_TO_READY, seconds.toFixed(1));
  }

  /** Takes the counters since the last report (atomically: a count during it lands in the next one). */
  async take(queueDepth: number, running: number): Promise<GatewayMetrics> {
    const results = (await this.redis.multi().hgetall(COUNTERS).lrange(WAKE_TO_READY, 0, -1).del(COUNTERS, WAKE_TO_READY).exec()) ?? [];
    const counters = (results[0]?.[1] ?? {}) as Record<string, string>;
    const waits = (results[1]?.[1] ?? []) as string[];
    const n = (k: Counter) => Number(counters[k] ?? 0);
    return {
      queueDepth,
      running,
      wakes: n('wakes'),
      jobsCompleted: n('jobsCompleted'),
      jobsFailed: n('jobsFailed'),
      jobsResubmitted: n('jobsResubmitted'),
      wakeToReadySeconds: waits.map(Number),
    };
  }

  /** Puts a report that could not be sent back, so the next one carries it. */
  async giveBack(metrics: GatewayMetrics): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const k of ['wakes', 'jobsCompleted', 'jobsFailed', 'jobsResubmitted'] as const) if (metrics[k] > 0) pipeline.hincrby(COUNTERS, k, metrics[k]);
    if (metrics.wakeToReadySeconds.length > 0) pipeline.rpush(WAKE_TO_READY, ...metrics.wakeToReadySeconds.map(String));
    await pipeline.exec();
  }
}

/** Nothing queued, running or counted: a report of it only bills CloudWatch metric-hours. */
export function isQuiet(m: GatewayMetrics): boolean {
  return m.queueDepth + m.running + m.wakes + m.jobsCompleted + m.jobsFailed + m.jobsResubmitted === 0 && m.wakeToReadySeconds.length === 0;
}
