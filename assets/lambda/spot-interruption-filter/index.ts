import { DescribeTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';

/**
 * Forwards EC2 Spot interruption warnings and rebalance recommendations to the
 * alert topic, but only for instances of this environment's fleet: EventBridge
 * patterns cannot match on tags, so the fleet check happens here.
 */

/** The fields of the EventBridge event this reads (EC2 User Guide, "Spot Instance interruption notices"). */
interface SpotWarningEvent {
  'detail-type'?: string;
  region?: string;
  time?: string;
  detail?: { 'instance-id'?: string; 'instance-action'?: string };
}

interface FilterResult {
  forwarded: boolean;
  instanceId?: string;
  reason?: string;
}

const FLEET_TAG = 'aws:ec2spot:fleet-request-id';

// Created once per execution environment; AWS_ENDPOINT_URL (a local API in tests) is read by the SDK itself.
const ec2 = new EC2Client({});
const sns = new SNSClient({});

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: the interruption filter needs FLEET_ID, TOPIC_ARN and ENV_NAME`);
  return value;
}

async function fleetOf(instanceId: string): Promise<string | undefined> {
  const out = await ec2.send(
    new DescribeTagsCommand({
      Filters: [
        { Name: 'resource-id', Values: [instanceId] },
        { Name: 'key', Values: [FLEET_TAG] },
      ],
    }),
  );
  return out.Tags?.[0]?.Value;
}

/**
 * One parameter and async: the nodejs24.x runtime refuses handlers that declare a third
 * (callback) one. A thrown error fails the invocation, so EventBridge retries it and finally
 * sends the event to the dead-letter queue (spot-interruption-alerts.ts).
 */
export async function handler(event: SpotWarningEvent): Promise<FilterResult> {
  const fleetId = required('FLEET_ID');
  const instanceId = event.detail?.['instance-id'];
  if (!instanceId) return { forwarded: false, reason: 'no instance id' };
  const fleet = await fleetOf(instanceId);
  if (fleet !== fleetId) return { forwarded: false, reason: `instance ${instanceId} is not in this fleet` };
  const kind = event['detail-type'] ?? 'EC2 Spot warning';
  const action = event.detail?.['instance-action'] ? ` (${event.detail['instance-action']})` : '';
  const message = [
    `${kind}${action} for ${instanceId} of Spot Fleet ${fleet} in ${event.region} at ${event.time}.`,
    'On an interruption warning the instance flushes generated images to S3 and stops ComfyUI within 2 minutes;',
    'the fleet (maintain) launches a replacement when capacity returns.',
  ].join('\n');
  await sns.send(
    new PublishCommand({
      TopicArn: required('TOPIC_ARN'),
      Subject: `[${required('ENV_NAME')}] ${kind}`.slice(0, 100),
      Message: message,
    }),
  );
  return { forwarded: true, instanceId };
}
