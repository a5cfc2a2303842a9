import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSpotFleetInstancesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { Match } from 'aws-cdk-lib/assertions';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bundleFunction, FUNCTION_RUNTIME } from '../lib/function-bundle';
import { SPOT_WARNING_DETAIL_TYPES } from '../lib/spot-interruption-alerts';
import { runFunction, type FunctionRun } from './support/lambda-runtime-api';
import { motoEnv, startMoto, type MotoServer } from './support/moto';
import { createFleet } from './support/moto-fleet';
import { ENVS, templateOf } from './support/synth';

// The function that forwards Spot warnings, as shipped (its bundle) and run as Lambda runs it
// (the runtime interface client under Node.js 24), against a real EC2 and SNS API (moto).

let moto: MotoServer;
let received: string[] = [];
let sink: http.Server;
let ec2: EC2Client;
let sns: SNSClient;
const saved = { ...process.env };

beforeAll(async () => {
  moto = await startMoto();
  Object.assign(process.env, motoEnv(moto.endpoint)); // for this file's own clients
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

async function invoke(event: object, env: Record<string, string>): Promise<FunctionRun> {
  const run = await runFunction(
    { codeDir: bundleFunction('spot-interruption-filter'), handler: 'index.handler', runtime: FUNCTION_RUNTIME.name, environment: { ...motoEnv(moto.endpoint), ...env } },
    [event],
  );
  expect(run.initError).toBeUndefined();
  expect(run.results).toHaveLength(1);
  return run;
}

async function runFilter(event: object, env: Record<string, string>) {
  const run = await invoke(event, env);
  expect(run.results[0].error).toBeUndefined();
  return run.results[0].response as { forwarded: boolean; instanceId?: string; reason?: string };
}

async function waitForDelivery(count: number): Promise<void> {
  for (let i = 0; i < 200 && received.filter((b) => b.includes('"Notification"')).length < count; i += 1) {
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

test('a publish that fails fails the invocation, so Lambda retries it and then dead-letters it', async () => {
  const { fleetId, instanceId } = await fleetWithOneInstance();
  const run = await invoke(warning(instanceId), { FLEET_ID: fleetId, TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:deleted-topic', ENV_NAME: 'dev' });
  expect(run.results[0].error).toMatchObject({ errorType: 'NotFoundException' });
});

test('a function without its fleet id fails loudly, naming the variable', async () => {
  const run = await invoke(warning('i-0123456789abcdef0'), { TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:alerts', ENV_NAME: 'dev' });
  expect(run.results[0].error?.errorMessage).toContain('FLEET_ID is not set');
});

// What happens to a warning the function could not forward: retried, then dead-lettered with an alarm.
describe.each(ENVS)('%s: undelivered warnings', (envName) => {
  const gpu = templateOf(envName, 'Gpu');
  const queues = gpu.findResources('AWS::SQS::Queue');
  const queueId = Object.keys(queues).find((id) => id.startsWith('SpotInterruptionsDeadLetters'))!;
  const queueArn = { 'Fn::GetAtt': [queueId, 'Arn'] };

  test('an encrypted queue that keeps them 14 days and accepts TLS only', () => {
    expect(queues[queueId].Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    gpu.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Allow', Action: 'sqs:SendMessage', Principal: { Service: 'events.amazonaws.com' } }),
        ]),
      },
    });
  });

  test('EventBridge retries a failed delivery to the function, then dead-letters it', () => {
    gpu.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { 'detail-type': SPOT_WARNING_DETAIL_TYPES },
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 }, DeadLetterConfig: { Arn: queueArn } })],
    });
  });

  test('Lambda retries a failed run of the function (twice, its default), then dead-letters it with its error', () => {
    gpu.hasResourceProperties('AWS::Lambda::Function', { Description: Match.stringLikeRegexp('Spot interruption'), DeadLetterConfig: { TargetArn: queueArn } });
    gpu.resourceCountIs('AWS::Lambda::EventInvokeConfig', 0);
    gpu.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^SpotInterruptionsFilterRole') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'sqs:SendMessage', Resource: queueArn })]) },
    });
  });

  test('one message in the queue raises an alarm on the alert topic', () => {
    gpu.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^AlertsTopic') }],
    });
  });
});
