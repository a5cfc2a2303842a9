import { Annotations, App, type Environment } from 'aws-cdk-lib';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EnvironmentConfig } from './config/load';
import { dropRedundantDependsOn } from './cfn-tidy';
import { addNagChecks } from './nag';
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

/** Adds one environment's stacks to an app, tagged for cost allocation and checked by cdk-nag. */
export function addEnvironment(app: App, config: EnvironmentConfig): EnvironmentStacks {
  const env: Environment = { account: config.account, region: config.region };
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
