import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleFunction, functionNames, FUNCTION_RUNTIME } from '../lib/function-bundle';
import type { CfnTemplate, SynthResult } from '../lib/synth';
import { runFunction, type FunctionRun } from './support/lambda-runtime-api';
import { motoEnv, useMoto } from './support/moto';
import { ENVS, synthesized, synthesizedDevWith, tempDir } from './support/synth';

// Every AWS::Lambda::Function of every environment, loaded from the cloud assembly's own
// asset folder by the real runtime interface client under the Node.js of its configured
// Runtime, with its configured Handler (test/support/lambda-runtime-api.ts). AWS calls go to moto.
const moto = useMoto();

interface TemplateFunction {
  readonly id: string;
  readonly runtime: string;
  readonly handler: string;
  readonly codeDir: string;
  readonly variables: Record<string, string>;
  /** Our function folder under assets/lambda/ whose bundle this is; undefined for CDK's own functions. */
  readonly ours?: string;
}

/** objectKey -> unpacked asset folder, from the stacks' asset manifests. */
function assetFolders(outdir: string): Map<string, string> {
  const folders = new Map<string, string>();
  for (const file of fs.readdirSync(outdir).filter((f) => f.endsWith('.assets.json'))) {
    const manifest = JSON.parse(fs.readFileSync(path.join(outdir, file), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }>;
    };
    for (const asset of Object.values(manifest.files)) {
      if (asset.source.packaging !== 'zip') continue;
      for (const d of Object.values(asset.destinations)) folders.set(d.objectKey, path.join(outdir, asset.source.path));
    }
  }
  return folders;
}

const OUR_FUNCTIONS = functionNames();

/** Which of our bundles an asset folder holds (byte-identical index.js), if any. */
function ourFunctionIn(codeDir: string): string | undefined {
  const shipped = path.join(codeDir, 'index.js');
  if (!fs.existsSync(shipped)) return undefined;
  const code = fs.readFileSync(shipped);
  return OUR_FUNCTIONS.find((name) => code.equals(fs.readFileSync(path.join(bundleFunction(name), 'index.js'))));
}

/** Variables as Lambda would see them; references to other resources become readable placeholders. */
function variablesOf(raw: unknown): Record<string, string> {
  const vars = (raw as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
  return Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? v : `unresolved:${JSON.stringify(v)}`]));
}

function functionsOf(result: SynthResult): TemplateFunction[] {
  const folders = assetFolders(result.outdir);
  return Object.entries(result.templates).flatMap(([stack, template]: [string, CfnTemplate]) =>
    Object.entries(template.Resources)
      .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
      .map(([logicalId, r]) => {
        const p = r.Properties as { Runtime: string; Handler: string; Code: { S3Key: string }; Environment?: unknown };
        const codeDir = folders.get(p.Code.S3Key);
        if (!codeDir) throw new Error(`${stack}/${logicalId}: no zip asset for S3Key ${JSON.stringify(p.Code.S3Key)}`);
        return { id: `${stack}/${logicalId}`, runtime: p.Runtime, handler: p.Handler, codeDir, variables: variablesOf(p.Environment), ours: ourFunctionIn(codeDir) };
      }),
  );
}

/**
 * One invocation for each of our handlers, with the answer it must give. They are
 * chosen to need no resource but moto: an instance of no fleet, an alarm back to OK,
 * the wait of a delete, and a delete whose secrets do not exist.
 */
const SAMPLES: Record<string, { event: unknown; expect: (run: FunctionRun) => void }> = {
  'gpu-control index.handler': {
    event: { action: 'no-such-action' },
    expect: (run) =>
      expect(run.results).toEqual([
        { response: { ok: false, code: 'BAD_REQUEST', message: 'action is "no-such-action": allowed is status, set-capacity, lease, register-link-key, report, list-models, list-workflows' } },
      ]),
  },
  'spot-interruption-filter index.handler': {
    event: { 'detail-type': 'EC2 Spot Instance Interruption Warning', source: 'aws.ec2', detail: { 'instance-id': 'i-0123456789abcdef0', 'instance-action': 'terminate' } },
    expect: (run) => expect(run.results).toEqual([{ response: { forwarded: false, reason: 'instance i-0123456789abcdef0 is not in this fleet' } }]),
  },
  'fleet-auto-stop index.handler': {
    event: { alarmData: { alarmName: 'WatcherFailed', state: { value: 'OK' } } },
    expect: (run) => expect(run.results).toEqual([{ response: { modified: false, reason: 'alarm state OK' } }]),
  },
  'vps-deployment index.isComplete': {
    event: { RequestType: 'Delete', PhysicalResourceId: 'vps:AiAssets/dev@203.0.113.10:22', ResourceProperties: {} },
    expect: (run) => expect(run.results).toEqual([{ response: { IsComplete: true } }]),
  },
  'vps-deployment index.onEvent': {
    event: {
      RequestType: 'Delete',
      PhysicalResourceId: 'vps:AiAssets/dev@203.0.113.10:22',
      ResourceProperties: {
        SshKeySecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-ssh-key',
        AppSecretsArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-app-secrets',
      },
    },
    // The handler ran and asked Secrets Manager (moto): its own error, reported as an invocation error.
    expect: (run) => {
      expect(run.results).toHaveLength(1);
      expect(run.results[0].error?.errorType).toBe('Error');
      expect(run.results[0].error?.errorMessage).toMatch(/secret/i);
    },
  },
};

/** Runs of identical code, handler, runtime, variables and event (CDK's functions are the same in every environment) happen once. */
const runs = new Map<string, Promise<FunctionRun>>();
function runOnce(fn: TemplateFunction, events: unknown[]): Promise<FunctionRun> {
  const key = JSON.stringify([path.basename(fn.codeDir), fn.handler, fn.runtime, fn.variables, events]);
  let run = runs.get(key);
  if (!run) {
    run = runFunction({ codeDir: fn.codeDir, handler: fn.handler, runtime: fn.runtime, environment: { ...motoEnv(moto().endpoint), ...fn.variables } }, events);
    runs.set(key, run);
  }
  return run;
}

// Every environment, plus dev with the optional fleet auto-stop function switched on.
const ASSEMBLIES: [string, TemplateFunction[]][] = [
  ...ENVS.map((envName): [string, TemplateFunction[]] => [envName, functionsOf(synthesized(envName))]),
  ['dev with autoStopOnWatcherFailure', functionsOf(synthesizedDevWith((c) => (c.observability = { autoStopOnWatcherFailure: true })))],
];

test('the templates hold every function of assets/lambda/', () => {
  const shipped = new Set(ASSEMBLIES.flatMap(([, functions]) => functions.map((f) => f.ours)));
  expect(OUR_FUNCTIONS.filter((name) => !shipped.has(name))).toEqual([]);
});

describe.each(ASSEMBLIES)('%s', (_label, functions) => {

  test.each(functions.map((f) => [f.id, f] as const))('%s loads with its Runtime and Handler and answers', async (_id, fn) => {
    const sample = fn.ours ? SAMPLES[`${fn.ours} ${fn.handler}`] : undefined;
    if (fn.ours && !sample) throw new Error(`no sample invocation for ${fn.ours} ${fn.handler}: add one to SAMPLES`);
    // CDK's own functions answer CloudFormation over HTTPS on port 443 only; they are loaded, not invoked.
    const run = await runOnce(fn, sample ? [sample.event] : []);
    expect({ initError: run.initError, output: run.initError ? run.output : '' }).toEqual({ initError: undefined, output: '' });
    if (sample) sample.expect(run);
  });
});

test('a handler that declares a third (callback) parameter is refused at init, as the old ones were', async () => {
  // The signature both handlers had before: `async (event, _context, injected)`. The RIC refuses any
  // handler whose length is 3 or more (aws-lambda-nodejs-runtime-interface-client v4.0.2,
  // src/function/callback-deprecation.ts; aws-cdk v2.259.0 release notes, issue #137 of that repository).
  const dir = tempDir('callback-handler-');
  fs.writeFileSync(path.join(dir, 'index.js'), 'exports.handler = async (event, _context, injected) => ({ injected: !!injected });\n');
  const run = await runFunction({ codeDir: dir, handler: 'index.handler', runtime: FUNCTION_RUNTIME.name, environment: motoEnv(moto().endpoint) }, [{}]);
  expect(run.initError?.errorType).toBe('Runtime.CallbackHandlerDeprecated');
  expect(run.results).toEqual([]);
});

test('a handler name that does not exist is an init error naming it', async () => {
  const run = await runFunction({ codeDir: bundleFunction('fleet-auto-stop'), handler: 'index.missing', runtime: FUNCTION_RUNTIME.name, environment: {} }, [{}]);
  expect(run.initError).toMatchObject({ errorType: 'Runtime.HandlerNotFound', errorMessage: 'index.missing is undefined or not exported' });
});
