import { GetMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';

/** How far back a reported idle time still counts as current (the GPU publishes every minute). */
const LOOKBACK_MS = 10 * 60_000;

/**
 * The last `IdleMinutes` the GPU host published for the environment in the past 10 minutes,
 * or null when it published none (booting, stopped, or the agent is down).
 */
export async function lastIdleMinutes(cw: CloudWatchClient, namespace: string, envName: string, now: number): Promise<number | null> {
  const result = await cw.send(
    new GetMetricDataCommand({
      StartTime: new Date(now - LOOKBACK_MS),
      EndTime: new Date(now + 60_000),
      ScanBy: 'TimestampDescending',
      MetricDataQueries: [
        {
          Id: 'idle',
          MetricStat: {
            Metric: { Namespace: namespace, MetricName: 'IdleMinutes', Dimensions: [{ Name: 'Environment', Value: envName }] },
            Period: 60,
            Stat: 'Maximum',
          },
        },
      ],
    }),
  );
  const series = result.MetricDataResults?.find((r) => r.Id === 'idle');
  const points = (series?.Timestamps ?? []).map((t, i) => ({ t: new Date(t).getTime(), v: series?.Values?.[i] }));
  points.sort((a, b) => b.t - a.t);
  const latest = points.find((p) => typeof p.v === 'number');
  return latest?.v ?? null;
}
