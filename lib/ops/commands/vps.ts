import { InvalidArgumentError, Option, type Command } from 'commander';
import * as path from 'node:path';
import type { EnvironmentConfig } from '../../config/load';
import { renderBundle, requiredSecrets } from '../../vps/bundle';
import { bundleSettingsFor } from '../../vps/bundle-settings';
import { deploy, logs, rollback, status, teardown } from '../../vps/deployer';
import { Reporter, type ConfirmInput, type OpsDeps } from '../context';
import { ExitCode, OpsError } from '../errors';
import { INTERRUPTED_EXIT_CODE, stillRunningOf } from '../interrupt';
import { homeDir } from '../ssh-identity';
import { isProductionLike } from '../teardown';
import { loadVpsConfig, vpsEnvDir, vpsLogin, vpsTarget, type SshAuth, type VpsLogin } from '../vps-connection';
import { planDeploy, renderDeployPlan } from '../vps-dry-run';
import { loginCall } from '../vps-errors';
import { followLogs } from '../vps-follow';
import { DEFAULT_PROVISION_SCRIPT, provisionVps } from '../vps-provision';
import { readDeploySecrets, readRedactionSecrets } from '../vps-secrets';
import { renderVpsStatus, vpsStatusReport } from '../vps-status';
import { parseMinutes, withEnvOption } from './options';

/** How long provision.sh may run (apt installs on a fresh VPS) unless --timeout-minutes says otherwise. */
const PROVISION_TIMEOUT_MINUTES = 30;

interface VpsOptions {
  env: string;
  identity?: string;
}
interface ProvisionCliOptions extends VpsOptions {
  sshUser: string;
  publicKey?: string;
  script: string;
  timeoutMinutes: number;
}
interface LockOptions extends VpsOptions {
  breakStaleLock?: boolean;
}
interface DeployCliOptions extends LockOptions {
  dryRun?: boolean;
}
interface StatusCliOptions extends VpsOptions {
  json?: boolean;
}
interface LogsCliOptions extends VpsOptions {
  service: string;
  lines: number;
  follow?: boolean;
}
interface DownCliOptions extends LockOptions {
  removeVolumes?: boolean;
  yes?: boolean;
}

function parseLines(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 10_000) throw new InvalidArgumentError('allowed is a whole number from 1 to 10000.');
  return value;
}

function parseUser(raw: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(raw)) throw new InvalidArgumentError('allowed is a Linux user name (lower case, digits, _ and -).');
  return raw;
}

/**
 * A path from the command line: `~/x` as the shell would expand it (for `--identity=~/...`), and a
 * relative path against the directory npm was started from (INIT_CWD), as `npm run` moves to the package root.
 */
function localPath(file: string, env: NodeJS.ProcessEnv): string {
  const expanded = file === '~' || file.startsWith('~/') ? path.join(homeDir(env), file.slice(1)) : file;
  return path.resolve(env.INIT_CWD || process.cwd(), expanded);
}

/** `--env` plus `--identity`, shared by every vps command. */
function vpsCommand(parent: Command, name: string): Command {
  return withEnvOption(parent.command(name)).option(
    '--identity <file>',
    'private key file to log in with (unencrypted); without it, ~/.ssh/id_ed25519 (else id_ecdsa, id_rsa) and the ssh-agent of SSH_AUTH_SOCK',
  );
}

/** The login as the command line gives it: where and how (`where` for messages). */
function loginWhere(login: VpsLogin): string {
  const { username, host, port } = login.connection;
  return `${username}@${host}:${port}`;
}

const refused = (message: string): OpsError => new OpsError(`${message} Nothing was changed.`, ExitCode.refused);

/** `down` follows teardown's rules: typed name unless --yes; retain environments keep volumes and need the typed name. */
export function checkDownAllowed(config: EnvironmentConfig, options: { removeVolumes: boolean; yes: boolean }, input: ConfirmInput): void {
  const env = config.envName;
  if (options.removeVolumes && config.removalPolicy === 'retain') {
    throw refused(
      `Refusing --remove-volumes for ${env}: its removalPolicy is retain, so the VPS data volumes (PostgreSQL, Redis, n8n, Ollama, certificates) are kept. ` +
        'Run down without --remove-volumes.',
    );
  }
  if (options.yes && isProductionLike(config)) {
    throw refused(`Refusing --yes for ${env}: stopping a production environment must be confirmed by typing its name; drop --yes.`);
  }
  if (!options.yes && !input.isTTY) {
    throw refused(`Cannot ask for confirmation: stdin is not a terminal. Run vps down in a terminal${isProductionLike(config) ? '' : ' or pass --yes'}.`);
  }
}

/** `vps provision | deploy | status | rollback | logs | down`: the VPS by hand, with the deployer the Vps stack's custom resource uses. */
export function registerVpsCommands(program: Command, deps: OpsDeps): void {
  const vps = program
    .command('vps')
    .description('provision, deploy, inspect, roll back and stop the VPS compose stack over SSH (your key or ssh-agent; pinned host key)')
    .addHelpText(
      'after',
      '\nHost, port, user and the pinned host key (vps.hostKeySha256) come from the environment\'s config only.\n' +
        'Exit codes: 0 ok, 1 failure (upload, pull, health gate, ...), 3 Vps stack/secret or release missing, 4 timeout,\n' +
        '5 refused (host key not pinned or wrong, lock held, not confirmed), 6 no SSH credentials or key rejected, 64 bad option,\n' +
        `${INTERRUPTED_EXIT_CODE} logs --follow stopped with Ctrl-C.`,
    );

  const setup = (opts: VpsOptions, json = false) => {
    const config = loadVpsConfig(opts.env, deps);
    const reporter = new Reporter(deps, json);
    const auth: SshAuth = { identity: opts.identity && localPath(opts.identity, deps.env) };
    /** Resolved only where the command connects (after its own refusals): the pin, then the credentials. */
    const login = (username?: string) => vpsLogin(config, auth, deps.env, (warning) => reporter.warn(warning), username);
    return { config, reporter, auth, login, target: vpsTarget(config), log: (line: string) => reporter.line(line) };
  };

  /** The release deploy would ship: the rendered bundle and the `.env` values derived from the Vps stack's secret. */
  const release = async (config: EnvironmentConfig) => {
    const settings = bundleSettingsFor(config);
    const bundle = renderBundle(settings);
    const names = requiredSecrets(settings);
    return { bundle, names, secrets: await readDeploySecrets(config, names, deps) };
  };

  vpsCommand(vps, 'provision')
    .description('first set-up of a fresh VPS: upload provision.sh over SFTP and run it as root (Docker, deploy user with your public key, firewall, ...)')
    .option('--ssh-user <name>', 'user to log in as to run the script (it needs root)', parseUser, 'root')
    .option('--public-key <file>', 'public key(s) to authorize for the deploy user (default: the --identity file + .pub, else ~/.ssh/id_ed25519.pub)')
    .addOption(new Option('--script <file>', 'the provisioning script to upload (e.g. a patched copy)').default(DEFAULT_PROVISION_SCRIPT, 'assets/compose/provision.sh'))
    .option('--timeout-minutes <m>', 'give up on the script after m minutes', parseMinutes, PROVISION_TIMEOUT_MINUTES)
    .action(async (opts: ProvisionCliOptions) => {
      const { config, reporter, auth, login } = setup(opts);
      const sshLogin = login(opts.sshUser);
      const publicKeyFile = opts.publicKey
        ? localPath(opts.publicKey, deps.env)
        : auth.identity
          ? `${auth.identity}.pub`
          : path.join(homeDir(deps.env), '.ssh', 'id_ed25519.pub');
      await provisionVps(
        config,
        sshLogin,
        { scriptFile: localPath(opts.script, deps.env), publicKeyFile, timeoutMs: opts.timeoutMinutes * 60_000 },
        reporter,
      );
    });

  vpsCommand(vps, 'deploy')
    .description('render the bundle from the config, derive .env from the Vps stack\'s secret, deploy through the health gate')
    .option('--break-stale-lock', 'remove a deploy lock left by a run known to be dead')
    .addOption(
      new Option('--dry-run', 'only show the release id and the files (and whether .env) that differ from the current release; no lock, nothing written').conflicts(
        'breakStaleLock',
      ),
    )
    .action(async (opts: DeployCliOptions) => {
      const { config, reporter, login, target, log } = setup(opts);
      const sshLogin = login();
      const { bundle, names, secrets } = await release(config);
      if (opts.dryRun === true) {
        const plan = await loginCall('vps deploy --dry-run', sshLogin, (connection) => planDeploy(connection, target, bundle, secrets), config.envName);
        for (const line of renderDeployPlan(plan, `${loginWhere(sshLogin)} in ${vpsEnvDir(config)}`)) reporter.line(line);
        return;
      }
      reporter.line(
        `Deploying release ${bundle.hash} (${Object.keys(bundle.files).length} files, .env with ${names.length} derived values) ` +
          `to ${loginWhere(sshLogin)} in ${vpsEnvDir(config)}`,
      );
      const result = await loginCall('vps deploy', sshLogin, (connection) =>
        deploy(connection, target, bundle, secrets, {
          composeTimeoutSeconds: config.vps.convergeTimeoutSeconds,
          breakStaleLock: opts.breakStaleLock === true,
          log,
        }),
        config.envName,
      );
      const previous = `previous: ${result.previous ?? 'none'}`;
      if (result.action === 'unchanged') reporter.line(`Unchanged: release ${result.release} is current and healthy (${previous}).`);
      else reporter.line(`Deployed release ${result.release} (${previous}; pruned: ${result.pruned.join(', ') || 'none'}).`);
    });

  vpsCommand(vps, 'status')
    .description('current and previous release, releases on disk, the deploy lock and the state of each service')
    .option('--json', 'print a JSON document instead of a table')
    .action(async (opts: StatusCliOptions) => {
      const { config, reporter, login, target } = setup(opts, opts.json === true);
      const result = await loginCall('vps status', login(), (connection) => status(connection, target), config.envName);
      const report = vpsStatusReport(config, result);
      if (reporter.json) reporter.data(report);
      else for (const line of renderVpsStatus(report)) reporter.line(line);
    });

  vpsCommand(vps, 'rollback')
    .description('make the previous release current again, through the same health gate as deploy')
    .option('--break-stale-lock', 'remove a deploy lock left by a run known to be dead')
    .action(async (opts: LockOptions) => {
      const { config, reporter, login, target, log } = setup(opts);
      const sshLogin = login();
      const secrets = await readRedactionSecrets(config, deps, reporter);
      const result = await loginCall('vps rollback', sshLogin, (connection) =>
        rollback(connection, target, {
          composeTimeoutSeconds: config.vps.convergeTimeoutSeconds,
          breakStaleLock: opts.breakStaleLock === true,
          secrets,
          log,
        }),
        config.envName,
      );
      reporter.line(`Rolled back to release ${result.release} (previous: ${result.previous ?? 'none'}).`);
    });

  vpsCommand(vps, 'logs')
    .description('the last log lines of one service of the current release (secret values masked as ***); --follow streams them')
    .requiredOption('--service <name>', 'compose service, e.g. n8n, sim, nginx, postgres')
    .option('--lines <n>', 'how many lines (with --follow: before following)', parseLines, 100)
    .option('--follow', 'keep streaming new lines (docker compose logs --follow) until Ctrl-C (exit 130), the service stops or the connection ends (exit 1)')
    .action(async (opts: LogsCliOptions) => {
      const { config, reporter, login, target } = setup(opts);
      const sshLogin = login();
      const secrets = await readRedactionSecrets(config, deps, reporter);
      if (opts.follow === true) {
        const what = `vps logs --follow --service ${opts.service}`;
        const out = { line: (text: string) => reporter.line(text), note: (text: string) => deps.stderr(`${text}\n`) };
        const options = { service: opts.service, lines: opts.lines, secrets };
        // Ctrl-C while the stream runs: the follow closes its channel, then runCli says this and exits 130.
        const end = await stillRunningOf(deps).during(
          `stopped following ${opts.service}; nothing keeps running (docker compose logs on the VPS ends with the SSH connection)`,
          () => loginCall(what, sshLogin, (connection) => followLogs(connection, target, options, out, process), config.envName),
        );
        // Reached only when nothing ended the process on Ctrl-C (runCli's interrupt hook normally does).
        if (end.how === 'interrupted') {
          throw new OpsError(`interrupted (Ctrl-C): stopped following ${opts.service}; the log stream on the VPS was closed.`, INTERRUPTED_EXIT_CODE);
        }
        if (end.exitCode !== 0) throw new OpsError(`docker compose logs --follow ${opts.service} exited ${end.exitCode} on ${loginWhere(sshLogin)}: see its output above.`);
        out.note(`# the log stream ended: docker compose logs --follow stops once no container of ${opts.service} is running (vps status shows the services)`);
        return;
      }
      const result = await loginCall('vps logs', sshLogin, (connection) => logs(connection, target, { service: opts.service, lines: opts.lines, secrets }), config.envName);
      deps.stderr(`# ${result.service} of release ${result.release}, last ${result.lines.length} lines\n`);
      for (const line of result.lines) reporter.line(line);
    });

  vpsCommand(vps, 'down')
    .description('docker compose down and remove the releases from disk after typing the env name; named volumes are kept unless --remove-volumes')
    .option('--remove-volumes', 'also delete the named volumes (databases!): refused when the removalPolicy is retain')
    .option('--yes', 'do not ask for the typed confirmation (not in retain environments such as prod)')
    .option('--break-stale-lock', 'remove a deploy lock left by a run known to be dead')
    .action(async (opts: DownCliOptions) => {
      const { config, reporter, login, target, log } = setup(opts);
      const removeVolumes = opts.removeVolumes === true;
      checkDownAllowed(config, { removeVolumes, yes: opts.yes === true }, deps.input);
      const sshLogin = login();
      const env = config.envName;
      reporter.line(`This stops ${config.appName}/${env} on ${loginWhere(sshLogin)} (docker compose down --remove-orphans)`);
      reporter.line(`and removes its releases from ${vpsEnvDir(config)}. Named volumes: ${removeVolumes ? 'DELETED (data loss)' : 'kept'}.`);
      if (opts.yes !== true) {
        const answer = (await deps.input.ask(`Type the environment name (${env}) to stop its VPS stack: `)).trim();
        if (answer !== env) throw refused(`Confirmation ${JSON.stringify(answer)} does not match "${env}".`);
      }
      const secrets = await readRedactionSecrets(config, deps, reporter);
      const result = await loginCall('vps down', sshLogin, (connection) =>
        teardown(connection, target, { removeVolumes, breakStaleLock: opts.breakStaleLock === true, secrets, log }),
        config.envName,
      );
      reporter.line(
        `Stopped ${config.appName}/${env}; removed releases: ${result.removedReleases.join(', ') || 'none'}; ` +
          `named volumes ${result.volumesRemoved ? 'removed' : 'kept'}. Deploy again with: npm run ops -- vps deploy --env ${env}`,
      );
    });
}
