import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { OpsDeps, Reporter } from './context';
import { ExitCode, OpsError } from './errors';
import { fleetInstances, type FleetInstance } from './fleet';
import type { GpuTarget } from './gpu-target';

/** Session Manager's port-forwarding document: forwards a local port to a port on the instance's localhost. */
const PORT_FORWARDING_DOCUMENT = 'AWS-StartPortForwardingSession';

/** What `aws ssm start-session` needs on the operator's machine, and where to get it. */
const SESSION_TOOLS = [
  { name: 'aws', install: 'install the AWS CLI: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html' },
  {
    name: 'session-manager-plugin',
    install: 'install the Session Manager plugin: https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html',
  },
] as const;

export interface ConnectOptions {
  /** The instance to forward to; needed when several are ready. */
  readonly instanceId?: string;
  readonly localPort: number;
  /** The aws executable, from requireSessionTools (checked before any AWS call). */
  readonly aws: string;
}

/** `--instance`: an EC2 instance id. */
export function parseInstanceId(raw: string): string {
  if (!/^i-[0-9a-f]{8}([0-9a-f]{9})?$/.test(raw)) throw new InvalidArgumentError('allowed is an EC2 instance id such as i-0a1b2c3d4e5f67890.');
  return raw;
}

/** `--local-port`: 1 to 65535. */
export function parsePort(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new InvalidArgumentError('allowed is a port number from 1 to 65535.');
  return value;
}

/** The executable `name` on `searchPath` (a PATH value), as a shell finds it; null when there is none. */
export function findOnPath(name: string, searchPath: string | undefined): string | null {
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** The aws executable, once both tools are on PATH; otherwise exit 1 with how to install what is missing. */
export function requireSessionTools(env: NodeJS.ProcessEnv): string {
  const found = SESSION_TOOLS.map((tool) => ({ ...tool, file: findOnPath(tool.name, env.PATH) }));
  const missing = found.filter((tool) => tool.file === null);
  if (missing.length > 0) {
    throw new OpsError(
      `gpu connect runs aws ssm start-session, which needs ${missing.map((t) => t.name).join(' and ')} on PATH: ${missing.map((t) => t.install).join('; ')}`,
      ExitCode.failure,
    );
  }
  return found.find((tool) => tool.name === 'aws')?.file as string;
}

/**
 * The instance to forward to: the fleet's one running box whose boot tag says ComfyUI is ready,
 * or the --instance among several. None ready: exit 3 with how to start one.
 */
export async function findReadyInstance(target: GpuTarget, instanceId: string | undefined): Promise<FleetInstance> {
  const running = (await fleetInstances(target.clients.ec2, target.fleetId)).filter((i) => i.state === 'running');
  const ready = running.filter((i) => i.bootPhases?.ready !== undefined);
  const env = target.config.envName;
  if (ready.length === 0) {
    const booting = running.length > 0 ? `; running but not ready yet: ${running.map((i) => i.instanceId).join(', ')}` : '';
    throw new OpsError(
      `No GPU instance of ${env} is ready (Spot Fleet ${target.fleetId}${booting}): start one and wait for it with npm run ops -- gpu start --env ${env} --wait`,
      ExitCode.notDeployed,
    );
  }
  const ids = ready.map((i) => i.instanceId).join(', ');
  if (instanceId !== undefined) {
    const chosen = ready.find((i) => i.instanceId === instanceId);
    if (!chosen) throw new OpsError(`--instance ${instanceId} is not a ready instance of Spot Fleet ${target.fleetId}: allowed is ${ids}`, ExitCode.usage);
    return chosen;
  }
  if (ready.length > 1) throw new OpsError(`${ready.length} instances of ${env} are ready: choose one with --instance (${ids})`, ExitCode.usage);
  return ready[0];
}

/** The command line of the port forward (argv after the executable), as the Session Manager docs give it. */
export function portForwardArgs(region: string, instanceId: string, remotePort: string, localPort: number): string[] {
  return [
    'ssm',
    'start-session',
    '--region',
    region,
    '--target',
    instanceId,
    '--document-name',
    PORT_FORWARDING_DOCUMENT,
    '--parameters',
    JSON.stringify({ portNumber: [remotePort], localPortNumber: [String(localPort)] }),
  ];
}

/**
 * `gpu connect`: an SSM port forward from localhost to ComfyUI on the box's loopback, run by the
 * operator's AWS CLI and Session Manager plugin with the operator's environment (credentials,
 * profile), in the environment's region. It lasts until the session ends (Ctrl-C).
 */
export async function connectGpu(target: GpuTarget, options: ConnectOptions, deps: Pick<OpsDeps, 'env'>, reporter: Reporter): Promise<void> {
  const instance = await findReadyInstance(target, options.instanceId);
  const args = portForwardArgs(target.config.region, instance.instanceId, target.comfyUiPort, options.localPort);
  const url = `http://localhost:${options.localPort}`;
  reporter.line(`ComfyUI of ${instance.instanceId} (${instance.instanceType}) at ${url}, through Session Manager; Ctrl-C ends the session.`);
  reporter.line('While the session is open the box counts as busy (its idle watcher sees the session) and does not stop itself.');
  reporter.line(`Running: aws ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(options.aws, args, { env: deps.env, stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (exitCode) => resolve(exitCode));
  });
  // null: ended by a signal, such as the Ctrl-C that closes the session.
  if (code !== 0 && code !== null) throw new OpsError(`aws ssm start-session exited with code ${code}: see its message above.`, ExitCode.failure);
}
