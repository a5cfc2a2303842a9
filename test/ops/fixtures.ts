import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client, type SpotPrice } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { stackName } from '../../lib/app';
import { loadEnvironment } from '../../lib/config/load';
import type { AwsClients } from '../../lib/ops/aws';
import type { OpsDeps } from '../../lib/ops/context';
import type { StackPart } from '../../lib/ops/stack-outputs';
import { motoEnv } from '../support/moto';

import { envWithoutAws, ISOLATED_AWS_ENV, runTsx } from '../support/child';
import { createFleet } from '../support/moto-fleet';

/** Re-exported: other ops tests import it from here. */
export { createFleet };

export const ROOT = path.resolve(__dirname, '..', '..');
const REGION = 'us-east-1';
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** SDK clients bound to moto explicitly (no reliance on the test process's environment). */
export function motoClients(endpoint: string): AwsClients {
  // Same as bin/ops.ts: no Node-22 notice from every client in the test output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const common = { region: REGION, endpoint, credentials: CREDENTIALS };
  return {
    ec2: new EC2Client(common),
    cloudFormation: new CloudFormationClient(common),
    cloudWatch: new CloudWatchClient(common),
    s3: new S3Client({ ...common, forcePathStyle: true }),
    secretsManager: new SecretsManagerClient(common),
  };
}

export interface DeployedFixture {
  readonly fleetId?: string;
  readonly assetBucket?: string;
  readonly logBucket?: string;
  readonly stacks: string[];
}

/** A minimal stack whose outputs carry literal values, as the real stacks' outputs would. */
async function createOutputStack(cfn: CloudFormationClient, name: string, outputs: Record<string, string>): Promise<void> {
  const template = {
    Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
    Outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, { Value: v }])),
  };
  await cfn.send(new CreateStackCommand({ StackName: name, TemplateBody: JSON.stringify(template) }));
}

/** Creates the environment's stacks in moto: Storage with real buckets, Gpu with a real fleet, others empty. */
export async function deployEnvironment(
  clients: AwsClients,
  envName: string,
  options: { parts?: StackPart[]; capacity?: number; comfyUiPort?: string } = {},
): Promise<DeployedFixture> {
  const config = loadEnvironment(envName);
  const parts = options.parts ?? ['Storage', 'Gpu'];
  const result: { fleetId?: string; assetBucket?: string; logBucket?: string; stacks: string[] } = { stacks: [] };
  for (const part of parts) {
    const name = stackName(config, part);
    result.stacks.push(name);
    if (part === 'Storage') {
      result.assetBucket = `aiassets-${envName}-assets-123456789012-us-east-1`;
      result.logBucket = `aiassets-${envName}-accesslogs-123456789012-us-east-1`;
      for (const bucket of [result.assetBucket, result.logBucket]) await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await clients.s3.send(new PutObjectCommand({ Bucket: result.assetBucket, Key: 'models/x.safetensors', Body: 'weights' }));
      await createOutputStack(clients.cloudFormation, name, { AssetBucketName: result.assetBucket, AccessLogBucketName: result.logBucket });
    } else if (part === 'Gpu') {
      result.fleetId = await createFleet(clients.ec2, options.capacity ?? 0);
      await createOutputStack(clients.cloudFormation, name, {
        SpotFleetRequestId: result.fleetId,
        InstanceRoleArn: 'arn:aws:iam::123456789012:role/gpu',
        AlertTopicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
        ComfyUiPort: options.comfyUiPort ?? '8188',
        HostLogGroup: `/aiassets/${envName}/gpu`,
        GpuMetricNamespace: 'AiAssets/Gpu',
      });
    } else {
      await createOutputStack(clients.cloudFormation, name, {});
    }
  }
  return result;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Environment of a CLI child process that may talk to moto only (no profile, no instance metadata). */
export function cliEnv(endpoint: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...envWithoutAws(),
    ...ISOLATED_AWS_ENV,
    ...motoEnv(endpoint),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    OPS_POLL_INTERVAL_MS: '100',
    ...extra,
  };
}

/** Runs `tsx bin/ops.ts <args>` as a real child process, killed after `timeoutMs`. */
export async function runOps(args: string[], env: NodeJS.ProcessEnv, options: { stdin?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return runTsx('bin/ops.ts', args, { env, ...options });
}

export interface ComfyStub {
  readonly url: string;
  /** Requests to /system_stats so far. */
  hits(): number;
  close(): Promise<void>;
}

/** A stand-in ComfyUI on 127.0.0.1: /system_stats answers 503 `notReadyFor` times, then 200 (never, with Infinity). */
export async function startComfyStub(notReadyFor: number): Promise<ComfyStub> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    if (req.url !== '/system_stats') {
      res.writeHead(404).end();
      return;
    }
    hits++;
    if (hits > notReadyFor) res.writeHead(200, { 'content-type': 'application/json' }).end('{"system":{"os":"posix"},"devices":[]}');
    else res.writeHead(503).end('starting');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * Rewrites what moto answers, for what moto cannot do: give fleet instances a public IP,
 * leave a fleet short of capacity, or price Spot pools differently (moto says $0.00001 for
 * every pool, once). Everything else is moto's real answer.
 */
export function patchEc2(
  ec2: EC2Client,
  patch: {
    publicIp?: string;
    fulfilledCapacity?: number;
    /** States reported by the next DescribeInstances calls, one per call (an instance slow to terminate). */
    instanceStates?: string[];
    /** The SpotPriceHistory DescribeSpotPriceHistory answers with, in place of moto's. */
    spotPriceHistory?: SpotPrice[];
  },
): void {
  ec2.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const output = result.output as {
        Reservations?: { Instances?: { PublicIpAddress?: string; PublicDnsName?: string; State?: { Name?: string } }[] }[];
        SpotFleetRequestConfigs?: { SpotFleetRequestConfig?: { FulfilledCapacity?: number } }[];
      };
      if (context.commandName === 'DescribeInstancesCommand' && patch.publicIp) {
        for (const r of output.Reservations ?? []) {
          for (const i of r.Instances ?? []) {
            i.PublicIpAddress = patch.publicIp;
            i.PublicDnsName = `ec2-${patch.publicIp.replace(/\./g, '-')}.compute-1.amazonaws.com`;
          }
        }
      }
      if (context.commandName === 'DescribeInstancesCommand' && patch.instanceStates?.length) {
        const state = patch.instanceStates.shift();
        for (const r of output.Reservations ?? []) for (const i of r.Instances ?? []) i.State = { Name: state };
      }
      if (context.commandName === 'DescribeSpotPriceHistoryCommand' && patch.spotPriceHistory) {
        (result.output as { SpotPriceHistory?: SpotPrice[] }).SpotPriceHistory = patch.spotPriceHistory;
      }
      if (context.commandName === 'DescribeSpotFleetRequestsCommand' && patch.fulfilledCapacity !== undefined) {
        for (const c of output.SpotFleetRequestConfigs ?? []) if (c.SpotFleetRequestConfig) c.SpotFleetRequestConfig.FulfilledCapacity = patch.fulfilledCapacity;
      }
      return result;
    },
    { step: 'initialize', name: 'opsTestPatch' },
  );
}

export interface CdkStandIn {
  /** Executable for OPS_CDK_BIN. */
  readonly bin: string;
  /** Environment entries the stand-in reads (its log file; CDK_STANDIN_FAIL=1 makes it fail). */
  readonly env: Record<string, string>;
  /** argv of every call so far. */
  calls(): string[][];
  clear(): void;
}

/**
 * A recording stand-in for `npx cdk` (the real CLI cannot deploy to moto): it logs its argv and,
 * like `cdk destroy` of these stacks would, deletes the named stacks and the Storage stack's buckets in moto.
 */
export function writeCdkStandIn(dir: string): CdkStandIn {
  const bin = path.join(dir, 'cdk-stand-in.js');
  const log = path.join(dir, 'cdk-calls.jsonl');
  fs.writeFileSync(
    bin,
    `#!/usr/bin/env node
'use strict';
const fs = require('node:fs');
const req = require('node:module').createRequire(${JSON.stringify(path.join(ROOT, 'package.json'))});
const args = process.argv.slice(2);
fs.appendFileSync(process.env.CDK_STANDIN_LOG, JSON.stringify(args) + '\\n');
console.log('stand-in cdk ' + args.join(' '));
if (process.env.CDK_STANDIN_FAIL === '1') {
  console.error('stand-in: simulated CloudFormation failure');
  process.exit(1);
}
const cfn = req('@aws-sdk/client-cloudformation');
const s3 = req('@aws-sdk/client-s3');
(async () => {
  const cf = new cfn.CloudFormationClient({});
  const s = new s3.S3Client({ forcePathStyle: true });
  const stacks = args.slice(1, args.indexOf('--force'));
  for (const name of stacks) {
    if (name.endsWith('-Storage')) {
      const outputs = (await cf.send(new cfn.DescribeStacksCommand({ StackName: name }))).Stacks[0].Outputs || [];
      for (const o of outputs) {
        const objects = (await s.send(new s3.ListObjectsV2Command({ Bucket: o.OutputValue }))).Contents || [];
        for (const obj of objects) await s.send(new s3.DeleteObjectCommand({ Bucket: o.OutputValue, Key: obj.Key }));
        await s.send(new s3.DeleteBucketCommand({ Bucket: o.OutputValue }));
      }
    }
    await cf.send(new cfn.DeleteStackCommand({ StackName: name }));
    console.log(' ✅  ' + name + ': destroyed');
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
`,
    { mode: 0o755 },
  );
  fs.writeFileSync(log, '');
  return {
    bin,
    env: { OPS_CDK_BIN: bin, CDK_STANDIN_LOG: log },
    calls: () =>
      fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as string[]),
    clear: () => fs.writeFileSync(log, ''),
  };
}

export interface InProcess {
  readonly deps: OpsDeps;
  stdout(): string;
  stderr(): string;
  /** Prompts shown to the operator. */
  readonly prompts: string[];
}

/** Dependencies for running the CLI in-process against moto, with a scripted terminal. */
export function inProcessDeps(
  clients: AwsClients,
  env: NodeJS.ProcessEnv,
  terminal: { isTTY: boolean; answer?: string } = { isTTY: false },
): InProcess {
  let out = '';
  let err = '';
  const prompts: string[] = [];
  return {
    deps: {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
      input: {
        isTTY: terminal.isTTY,
        ask: async (prompt) => {
          prompts.push(prompt);
          return terminal.answer ?? '';
        },
      },
      clients: () => clients,
      env,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      now: () => Date.now(),
    },
    stdout: () => out,
    stderr: () => err,
    prompts,
  };
}
