import { ListMetricsCommand } from '@aws-sdk/client-cloudwatch';
import { BILLING_METRICS_REGION } from '../aws';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type DoctorCheck } from './types';

/**
 * AWS publishes AWS/Billing EstimatedCharges, in us-east-1 only, once "Receive CloudWatch billing
 * alerts" is on; about 15 minutes after it is turned on the first time (CloudWatch User Guide,
 * "Create a billing alarm to monitor your estimated AWS charges", Enabling billing alerts).
 * The dashboard's estimated-charges widget reads it.
 */
export const billingAlertsCheck: DoctorCheck = {
  name: 'billing-alerts',
  severity: 'warn',
  actions: ['cloudwatch:ListMetrics'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run({ account, signal }) {
    const out = await account.billingCloudWatch.send(new ListMetricsCommand({ Namespace: 'AWS/Billing', MetricName: 'EstimatedCharges' }), { abortSignal: signal });
    const series = out.Metrics?.length ?? 0;
    if (series > 0) return ok(`AWS/Billing EstimatedCharges is published in ${BILLING_METRICS_REGION} (${series} series)`);
    return problem(
      'warn',
      `no AWS/Billing EstimatedCharges metric in ${BILLING_METRICS_REGION}: billing alerts are off (or were turned on less than about 15 minutes ago), so the dashboard shows no estimated charges`,
      'Billing console (as the root user or an IAM user with billing access), Billing preferences, Alert preferences: turn on "Receive CloudWatch billing alerts" and save',
    );
  },
};
