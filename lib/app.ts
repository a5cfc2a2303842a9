import { Annotations, App, type Environment } from 'aws-cdk-lib';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EnvironmentConfig } from './config/load';
import { dropRedundantDependsOn } from './cfn-tidy';
import { gpuAllowance, measuringAllowance, type GpuAllowance } from './cost/gpu-allowance';
import { addNagChecks } from './nag';
import type { CfnTemplate } from './synth';
import { GpuStack } from './stacks/gpu-stack';
import { ObservabilityStack } from './stacks/observability-stack';
import { StorageStack } from './stacks/storage-stack';
import { VpsStack } from './stacks/vps-stack';
import { tagStack } from './tagging';

/** The stacks of one environment, in dependency order. */
export interface EnvironmentStacks {
  readonly storage: StorageStack;
  readonly gpu: GpuStack;
  readonly observability: ObservabilityStack;
  /** Absent until vps.hostKeySha256 pins the VPS host key: a deploy that must refuse is not synthesized. */
  readonly vps?: VpsStack;
}

/** `<App>-<env>-<Part>`: the stack name and id every tool (ops commands, CI) relies on. */
export function stackName(config: Pick<EnvironmentConfig, 'appName' | 'envName'>, part: string): string {
  return `${config.appName}-${config.envName}-${part}`;
}

export interface EnvironmentOptions {
  /**
   * The GPU allowance to build with. Absent (every caller but the measuring pass): measured first
   * by synthesizing the same environment in a throwaway app (see measureGpuAllowance).
   */
  readonly gpuAllowance?: GpuAllowance;
}

/** Adds one environment's stacks to an app, tagged for cost allocation and checked by cdk-nag. */
export function addEnvironment(app: App, config: EnvironmentConfig, options: EnvironmentOptions = {}): EnvironmentStacks {
  const env: Environment = { account: config.account, region: config.region };
  const allowance = options.gpuAllowance ?? measureGpuAllowance(app, config);
  const retain = config.removalPolicy === 'retain';
  const storage = new StorageStack(app, stackName(config, 'Storage'), {
    env,
    config,
    terminationProtection: retain,
    description: `${config.appName} ${config.envName}: asset bucket and its access logs (stateful)`,
  });
  const gpu = new GpuStack(app, stackName(config, 'Gpu'), {
    env,
    config,
    gpuAllowance: allowance,
    description: `${config.appName} ${config.envName}: ComfyUI GPU tier (stateless)`,
  });
  gpu.addStackDependency(storage, 'the GPU reads and writes the asset bucket');
  const observability = new ObservabilityStack(app, stackName(config, 'Observability'), {
    env,
    config,
    fleetId: gpu.spotFleet.fleet.ref,
    alertTopic: gpu.alerts.topic,
    description: `${config.appName} ${config.envName}: dashboard, alarms and budget`,
  });
  let vps: VpsStack | undefined;
  if (config.vps.hostKeySha256) {
    vps = new VpsStack(app, stackName(config, 'Vps'), {
      env,
      config,
      description: `${config.appName} ${config.envName}: Docker Compose stack on the VPS, deployed over SSH`,
    });
    // By name, not by export (lib/gpu-control-names.ts), but it must exist before the deploy reads it.
    vps.addStackDependency(gpu, "the deploy copies the gateway's access key from the Gpu stack's secret");
  } else {
    // On a synthesized stack: the CLI prints stack annotations (app-level ones are not reported).
    Annotations.of(storage).addWarningV2(
      `aiassets:${config.envName}:vpsHostKey`,
      `${stackName(config, 'Vps')} is not synthesized: set vps.hostKeySha256 for ${config.envName} to the output of ` +
        `"ssh-keyscan -p ${config.vps.sshPort} ${config.vps.host} | ssh-keygen -lf -" (run it over a trusted network).`,
    );
  }
  const tags = { App: config.appName, Environment: config.envName, CostCenter: config.costCenter };
  for (const stack of [storage, gpu, observability, ...(vps ? [vps] : [])]) {
    tagStack(stack, tags);
    dropRedundantDependsOn(stack);
  }
  return { storage, gpu, observability, vps };
}

/** A well-formed host key fingerprint for the measuring pass only: nothing is deployed with it. */
const MEASURING_HOST_KEY = `SHA256:${'0'.repeat(43)}`;

/**
 * The GPU allowance is the budget minus the fixed monthly floor, and the floor is priced from the
 * synthesized templates (lib/cost/estimate.ts), which hold the allowance themselves. So: a
 * measuring pass builds the same environment with an allowance of 0 (the number changes no
 * resource the estimate counts) in a throwaway app without cdk-nag, synthesizes it into a
 * temporary folder, prices it and removes it; the real pass then builds with the number.
 */
function measureGpuAllowance(app: App, config: EnvironmentConfig): GpuAllowance {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `aiassets-measure-${config.envName}-`));
  try {
    // autoSynth off: under the CDK CLI a second app would otherwise synthesize again at exit. No
    // validation: the real pass validates and reports (annotations too) once.
    const measuring = new App({
      outdir,
      autoSynth: false,
      builtinCloudFormationValidation: false,
      context: { ...app.node.getAllContext(), '@aws-cdk/core:annotationsInValidationReport': false },
    });
    // The floor of the complete environment: the Vps stack's resources count even before
    // vps.hostKeySha256 is pinned (until then only this pass builds it), so pinning the key
    // later does not move the allowance.
    const complete = config.vps.hostKeySha256 ? config : { ...config, vps: { ...config.vps, hostKeySha256: MEASURING_HOST_KEY } };
    addEnvironment(measuring, complete, { gpuAllowance: measuringAllowance(config) });
    const assembly = measuring.synth();
    const templates = Object.fromEntries(assembly.stacks.map((s) => [s.stackName, s.template as CfnTemplate]));
    return gpuAllowance(config, templates);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/** The feature flags and settings of cdk.json, so in-process synths (tests, synth-all) match `cdk synth`. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

/** A new app with the project's context and the cdk-nag plugin. */
export function createApp(options: { outdir?: string; context?: Record<string, unknown> } = {}): App {
  const app = new App({ outdir: options.outdir, context: { ...cdkJsonContext(), ...options.context } });
  addNagChecks(app);
  return app;
}
