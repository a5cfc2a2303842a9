// Forwards EC2 Spot interruption warnings and rebalance recommendations to the
// alert topic, but only for instances of this environment's fleet: EventBridge
// patterns cannot match on tags, so the fleet check happens here.
const { EC2Client, DescribeTagsCommand } = require('@aws-sdk/client-ec2');
const { SNSClient, PublishCommand } = require('@aws-sdk/client-sns');

const FLEET_TAG = 'aws:ec2spot:fleet-request-id';

function clients() {
  const endpoint = process.env.AWS_ENDPOINT_URL || undefined;
  return { ec2: new EC2Client({ endpoint }), sns: new SNSClient({ endpoint }) };
}

async function fleetOf(ec2, instanceId) {
  const out = await ec2.send(
    new DescribeTagsCommand({
      Filters: [
        { Name: 'resource-id', Values: [instanceId] },
        { Name: 'key', Values: [FLEET_TAG] },
      ],
    }),
  );
  return out.Tags && out.Tags[0] ? out.Tags[0].Value : undefined;
}

exports.handler = async (event, _context, injected) => {
  const { ec2, sns } = injected || clients();
  const instanceId = event.detail && event.detail['instance-id'];
  if (!instanceId) return { forwarded: false, reason: 'no instance id' };
  const fleet = await fleetOf(ec2, instanceId);
  if (fleet !== process.env.FLEET_ID) return { forwarded: false, reason: `instance ${instanceId} is not in this fleet` };
  const kind = event['detail-type'];
  const action = event.detail['instance-action'] ? ` (${event.detail['instance-action']})` : '';
  const message = [
    `${kind}${action} for ${instanceId} of Spot Fleet ${fleet} in ${event.region} at ${event.time}.`,
    'On an interruption warning the instance flushes generated images to S3 and stops ComfyUI within 2 minutes;',
    'the fleet (maintain, stop on interruption) launches a replacement when capacity returns.',
  ].join('\n');
  await sns.send(
    new PublishCommand({
      TopicArn: process.env.TOPIC_ARN,
      Subject: `[${process.env.ENV_NAME}] ${kind}`.slice(0, 100),
      Message: message,
    }),
  );
  return { forwarded: true, instanceId };
};
