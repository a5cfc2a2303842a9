import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { SSMClient } from '@aws-sdk/client-ssm';
import { handleControlRequest, type ControlClients } from '../../../lib/gpu-control/actions';
import { isInstanceStateEvent, recordRun, type LedgerResult } from '../../../lib/gpu-control/ledger';
import { gatewayMetricNamespace } from '../../../lib/gpu-control/names';
import type { ControlResponse } from '../../../lib/gpu-control/protocol';
import { settingsFromEnvironment } from '../../../lib/gpu-control/settings';

/**
 * The GPU control function (lib/gpu-control.ts): the only thing the VPS's AWS credential may
 * invoke. It answers the gateway's requests (lib/gpu-control/protocol.ts), enforcing what IAM
 * cannot (capacity within [0, gpu.maxInstances], no wake once the month's allowance is spent),
 * and it keeps the GPU-time ledger from EC2 state-change events of this fleet's instances.
 */

// Created once per execution environment; AWS_ENDPOINT_URL (a local API in tests) is read by the SDK itself.
const clients: ControlClients = {
  ec2: new EC2Client({}),
  ssm: new SSMClient({}),
  cloudWatch: new CloudWatchClient({}),
  // Path-style only against a local endpoint (moto on 127.0.0.1 has no bucket host names).
  s3: new S3Client({ forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL) }),
};

const log = (line: string): void => console.log(line);

/**
 * One parameter and async: the nodejs24.x runtime refuses handlers that declare a third
 * (callback) one. A thrown error fails the invocation: the gateway sees a function error, and
 * EventBridge's asynchronous invocation is retried by Lambda.
 */
export async function handler(event: unknown): Promise<ControlResponse | LedgerResult> {
  const settings = settingsFromEnvironment(process.env);
  const now = new Date();
  if (isInstanceStateEvent(event)) {
    return recordRun(
      { ec2: clients.ec2, cloudWatch: clients.cloudWatch, fleetId: settings.fleetId, namespace: gatewayMetricNamespace(settings.appName), envName: settings.envName, now, log },
      event,
    );
  }
  return handleControlRequest(event, { clients, settings, now: () => new Date(), log });
}
