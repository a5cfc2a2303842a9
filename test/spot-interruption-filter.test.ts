import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSpotFleetInstancesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { motoEnv, startMoto, type MotoServer } from './support/moto';
import { createFleet } from './support/moto-fleet';

// The Lambda handler that forwards Spot warnings, run against a real EC2 and SNS API (moto).
const FILTER = '../assets/lambda/spot-interruption-filter/index.js';

let moto: MotoServer;
let received: string[] = [];
let sink: http.Server;
let ec2: EC2Client;
let sns: SNSClient;
const saved = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, motoEnv(moto.endpoint));
  sink = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      received.push(body);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  ec2 = new EC2Client({ endpoint: moto.endpoint });
  sns = new SNSClient({ endpoint: moto.endpoint });
});

afterAll(async () => {
  process.env = saved;
  await new Promise((r) => sink.close(r));
  await moto.stop();
});

beforeEach(async () => {
  await moto.reset();
  received = [];
});

async function fleetWithOneInstance(): Promise<{ fleetId: string; instanceId: string }> {
  const fleetId = await createFleet(ec2, 1);
  const instances = await ec2.send(new DescribeSpotFleetInstancesCommand({ SpotFleetRequestId: fleetId }));
  const instanceId = instances.ActiveInstances![0].InstanceId!;
  // EC2 tags fleet instances with their request id; set it explicitly in case the emulator does not.
  await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'aws:ec2spot:fleet-request-id', Value: fleetId }] }));
  return { fleetId, instanceId };
}

async function topicWithHttpSink(): Promise<string> {
  const topic = await sns.send(new CreateTopicCommand({ Name: 'alerts' }));
  const { port } = sink.address() as AddressInfo;
  await sns.send(new SubscribeCommand({ TopicArn: topic.TopicArn, Protocol: 'http', Endpoint: `http://127.0.0.1:${port}/` }));
  return topic.TopicArn!;
}

function warning(instanceId: string) {
  return {
    'detail-type': 'EC2 Spot Instance Interruption Warning',
    source: 'aws.ec2',
    region: 'us-east-1',
    time: '2026-11-23T16:00:00Z',
    detail: { 'instance-id': instanceId, 'instance-action': 'stop' },
  };
}

async function runFilter(event: object, env: Record<string, string>) {
  Object.assign(process.env, env);
  jest.resetModules();
  const { handler } = require(FILTER);
  return handler(event, {});
}

async function waitForDelivery(count: number): Promise<void> {
  for (let i = 0; i < 50 && received.filter((b) => b.includes('"Notification"')).length < count; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a warning for an instance of this fleet reaches the topic with what happens next', async () => {
  const { fleetId, instanceId } = await fleetWithOneInstance();
  const topicArn = await topicWithHttpSink();
  const result = await runFilter(warning(instanceId), { FLEET_ID: fleetId, TOPIC_ARN: topicArn, ENV_NAME: 'dev' });
  expect(result).toEqual({ forwarded: true, instanceId });
  await waitForDelivery(1);
  const notification = received.map((b) => JSON.parse(b)).find((m) => m.Type === 'Notification');
  expect(notification.Subject).toBe('[dev] EC2 Spot Instance Interruption Warning');
  expect(notification.Message).toContain(`${instanceId} of Spot Fleet ${fleetId}`);
  expect(notification.Message).toContain('flushes generated images to S3');
});

test('a warning for an instance of another fleet is ignored', async () => {
  const { instanceId } = await fleetWithOneInstance();
  const topicArn = await topicWithHttpSink();
  const result = await runFilter(warning(instanceId), { FLEET_ID: 'sfr-someone-else', TOPIC_ARN: topicArn, ENV_NAME: 'dev' });
  expect(result.forwarded).toBe(false);
  await new Promise((r) => setTimeout(r, 300));
  expect(received.filter((b) => b.includes('"Notification"'))).toEqual([]);
});

test('an instance outside any fleet is ignored', async () => {
  const ami = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const run = await ec2.send(new RunInstancesCommand({ ImageId: ami, MinCount: 1, MaxCount: 1 }));
  const result = await runFilter(warning(run.Instances![0].InstanceId!), { FLEET_ID: 'sfr-1', TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:none', ENV_NAME: 'dev' });
  expect(result).toEqual({ forwarded: false, reason: expect.stringContaining('is not in this fleet') });
});
