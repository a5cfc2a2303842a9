/**
 * The first boot of a GPU instance: install.sh from the user data, on a stand-in of the Deep
 * Learning Base OSS Nvidia Driver AMI built from its release notes (./dlami.ts), then the units it
 * installed checked by the real systemd-analyze.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMFYUI_CONTAINER_USER, COMFYUI_PATHS } from '../../lib/comfyui-image';
import { EBS_ROOT, INSTANCE_STORE, installDlamiStandIn, mounts, type DiskLayout } from './dlami';
import { envFile, Sandbox, SCRIPTS } from './harness';

const SERVICES = [
  'comfyui',
  'comfyui-agent',
  'comfyui-data',
  'comfyui-idle',
  'comfyui-image',
  'comfyui-link-access',
  'comfyui-model-sync',
  'comfyui-output-flush',
  'comfyui-output-sync',
  'comfyui-ready',
  'comfyui-spot-interruption',
];
const ENABLED = [
  'comfyui.service',
  'comfyui-ready.service',
  'comfyui-agent.service',
  'comfyui-output-flush.service',
  'comfyui-spot-interruption.service',
  'comfyui-idle.timer',
  'comfyui-output-sync.timer',
  'comfyui-link-access.timer',
];
/** What nvidia-container-toolkit's `nvidia-ctk runtime configure --runtime=docker` leaves in daemon.json on the AMI. */
const DLAMI_DAEMON_JSON = { runtimes: { nvidia: { args: [], path: 'nvidia-container-runtime' } } };

let sb: Sandbox;
let root: string;
let state: string;

function boot(layout: DiskLayout): void {
  state = installDlamiStandIn(sb, root, layout);
}

beforeEach(() => {
  sb = new Sandbox();
  root = sb.path('root');
  sb.write('root/etc/comfyui/comfyui.env', envFile(8188));
  sb.write('root/etc/docker/daemon.json', JSON.stringify(DLAMI_DAEMON_JSON, null, 2));
  boot({ instanceStore: 'dlami' });
});
afterEach(() => sb.cleanup());

function runScript(script: string) {
  // IMDS on a closed loopback port: boot-phase.sh must log and go on, never reach the network.
  const env = sb.env({ ROOT: root, FAKE_STATE: state, IMDS_URL: 'http://127.0.0.1:9', RUN_DIR: sb.path('run'), UPTIME_FILE: sb.write('uptime', '42.5 80.1\n') });
  const result = spawnSync('bash', [script], { env, encoding: 'utf8', timeout: 20_000 });
  expect(result.error).toBeUndefined();
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: expect.not.stringMatching(/error|fail/i) });
  return result;
}

const install = () => runScript(path.join(SCRIPTS, 'install.sh'));
/** What comfyui-data.service runs on every boot. */
const dataUnit = () => runScript(path.join(root, 'opt/comfyui/bin/data-volume.sh'));

/** Every file and directory under dir with its mode and content. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const file = path.join(current, entry.name);
      const mode = (fs.statSync(file).mode & 0o777).toString(8);
      if (entry.isDirectory()) {
        out[path.relative(dir, file) + '/'] = mode;
        walk(file);
      } else {
        out[path.relative(dir, file)] = `${mode}\n${fs.readFileSync(file, 'utf8')}`;
      }
    }
  };
  walk(dir);
  return out;
}

const read = (relative: string) => fs.readFileSync(path.join(root, relative), 'utf8');
const unit = (name: string) => read(`etc/systemd/system/${name}`);
const argsOf = (cmd: string) => sb.calls(cmd).map((call) => call.args);
const dataDir = () => path.join(root, 'opt/comfyui/data');
const daemonJson = () => JSON.parse(read('etc/docker/daemon.json'));

describe('first boot on the Deep Learning AMI (instance store already in LVM at /opt/dlami/nvme)', () => {
  test('installs and enables every unit without touching the disk the AMI uses', () => {
    install();
    expect(argsOf('mkfs.ext4')).toEqual([]);
    expect(argsOf('mount')).toEqual([['--bind', path.join(root, 'opt/dlami/nvme/comfyui'), dataDir()]]);
    expect(mounts(state)).toContain(dataDir());
    const systemctl = argsOf('systemctl').filter((a) => a[0] !== 'is-active');
    expect(systemctl).toContainEqual(['daemon-reload']);
    expect(systemctl).toContainEqual(['enable', ...ENABLED]);
    for (const name of ENABLED) expect(unit(name)).toMatch(/^\[Install\]\nWantedBy=(multi-user|timers|comfyui)\.(target|service)$/m);
    // The bind source exists on the instance store; the stand-in's mount does not really bind.
    expect(fs.statSync(path.join(root, 'opt/dlami/nvme/comfyui')).isDirectory()).toBe(true);
    for (const dir of ['models', 'output', 'input', 'user', 'custom_nodes']) expect(fs.statSync(path.join(dataDir(), dir)).isDirectory()).toBe(true);
  });

  test("Docker's data root moves onto the instance store, keeping the AMI's NVIDIA runtime, with one restart", () => {
    install();
    expect(daemonJson()).toEqual({ ...DLAMI_DAEMON_JSON, 'data-root': '/opt/comfyui/data/docker' });
    expect(argsOf('systemctl').filter((a) => a[0] === 'restart' && a.includes('docker.service'))).toHaveLength(1);
    // A later boot finds it set: no second restart, no rewrite.
    const before = read('etc/docker/daemon.json');
    fs.rmSync(sb.callsFile);
    dataUnit();
    expect(read('etc/docker/daemon.json')).toBe(before);
    expect(argsOf('systemctl').filter((a) => a[0] === 'restart')).toEqual([]);
  });

  test('needs no CloudWatch agent on the AMI: install writes its config, the agent unit installs it', () => {
    install();
    expect(fs.existsSync(path.join(sb.bin, 'amazon-cloudwatch-agent-ctl'))).toBe(false);
    const config = JSON.parse(read('opt/aws/amazon-cloudwatch-agent/etc/comfyui-agent.json'));
    expect(config.metrics.metrics_collected.nvidia_gpu.measurement).toContain('utilization_gpu');
    const streams = (config.logs.logs_collected.files.collect_list as { file_path: string }[]).map((s) => s.file_path);
    expect(streams.filter((s) => s.startsWith('/var/log/comfyui/')).sort()).toEqual(SERVICES.map((name) => `/var/log/comfyui/${name}.log`).sort());
    expect(unit('comfyui-agent.service')).toContain('ExecStart=/opt/comfyui/bin/cloudwatch-agent.sh\n');
    // Off the critical path: nothing ComfyUI needs waits for the agent.
    for (const name of ['comfyui.service', 'comfyui-image.service', 'comfyui-model-sync.service']) expect(unit(name)).not.toContain('comfyui-agent');
  });

  test('a second run leaves the file tree byte-identical', () => {
    install();
    const first = snapshot(root);
    install();
    expect(snapshot(root)).toEqual(first);
  });

  test('the awscli (v1 on the AMI) gets more parallel S3 requests through a config file beside the env file', () => {
    install();
    expect(read('etc/comfyui/aws-cli.conf')).toBe('[default]\ns3 =\n  max_concurrent_requests = 32\n  multipart_chunksize = 64MB\n');
  });
});

describe("the gateway's SSH link", () => {
  test('the link user may only forward TCP to what its key line permits: an sshd drop-in, then sshd reloaded', () => {
    install();
    expect(read('etc/ssh/sshd_config.d/comfyui-link.conf')).toBe(fs.readFileSync(path.join(SCRIPTS, 'sshd-comfyui-link.conf'), 'utf8'));
    expect((fs.statSync(path.join(root, 'etc/ssh/sshd_config.d/comfyui-link.conf')).mode & 0o777).toString(8)).toBe('644');
    expect(argsOf('systemctl')).toContainEqual(['try-reload-or-restart', 'ssh.service']);
  });

  test('link access runs at once, then every minute', () => {
    install();
    expect(unit('comfyui-link-access.timer')).toMatch(/^OnBootSec=0\nOnUnitActiveSec=1min\n/m);
    expect(unit('comfyui-link-access.service')).toContain('ExecStart=/opt/comfyui/bin/link-access.sh\n');
    expect(argsOf('systemctl').find((a) => a[0] === 'restart' && a.includes('comfyui-idle.timer'))).toContain('comfyui-link-access.timer');
  });
});

describe('other disk layouts', () => {
  test('without an instance store the data dir and Docker stay on the root volume', () => {
    boot({ instanceStore: 'none' });
    const result = install();
    expect(argsOf('mkfs.ext4')).toEqual([]);
    expect(argsOf('mount')).toEqual([]);
    expect(result.stdout).toContain('no usable instance store');
    expect(daemonJson()).toEqual(DLAMI_DAEMON_JSON);
    expect(fs.statSync(path.join(dataDir(), 'models')).isDirectory()).toBe(true);
  });

  test('an AMI that leaves the instance store blank: formatted once, mounted again after a reboot', () => {
    boot({ instanceStore: 'blank' });
    install();
    expect(argsOf('mkfs.ext4')).toEqual([['-q', '-F', '-L', 'comfyui-data', INSTANCE_STORE]]);
    expect(argsOf('mount')).toEqual([['-o', 'noatime', INSTANCE_STORE, dataDir()]]);
    // Reboot: the disk keeps its filesystem, nothing is mounted yet.
    fs.writeFileSync(path.join(state, 'mounts'), '/\n');
    fs.rmSync(path.join(state, 'busy-nvme1n1'));
    dataUnit();
    expect(argsOf('mkfs.ext4')).toHaveLength(1);
    expect(argsOf('mount')).toHaveLength(2);
  });

  test('a disk holding a filesystem that is not ours is never formatted or mounted', () => {
    boot({ instanceStore: 'blank' });
    fs.writeFileSync(path.join(state, 'fs-nvme1n1'), 'xfs\nscratch\n');
    const result = install();
    expect(argsOf('mkfs.ext4')).toEqual([]);
    expect(argsOf('mount')).toEqual([]);
    expect(result.stdout).toContain(`leaving ${INSTANCE_STORE} alone: it holds xfs (scratch), not our data`);
  });

  test('a disk with partitions or a mount is in use and left alone', () => {
    boot({ instanceStore: 'blank' });
    fs.writeFileSync(path.join(state, 'tree-nvme1n1'), `${INSTANCE_STORE} \n${INSTANCE_STORE}p1 /scratch\n`);
    const result = install();
    expect(argsOf('mkfs.ext4')).toEqual([]);
    expect(result.stdout).toContain(`leaving ${INSTANCE_STORE} alone: it is in use`);
    expect(EBS_ROOT).not.toBe(INSTANCE_STORE);
  });
});

describe('the units', () => {
  test('ComfyUI waits for its image and the models, and mounts the data dir at the paths of the image contract', () => {
    install();
    const comfy = unit('comfyui.service');
    for (const dep of ['comfyui-image.service', 'comfyui-model-sync.service', 'comfyui-data.service']) {
      expect(comfy).toMatch(new RegExp(`^Requires=.*\\b${dep.replace('.', '\\.')}\\b`, 'm'));
      expect(comfy).toMatch(new RegExp(`^After=.*\\b${dep.replace('.', '\\.')}\\b`, 'm'));
    }
    const run = comfy.match(/^ExecStart=([\s\S]*?[^\\])\n/m)?.[1].replace(/\\\n\s*/g, '') ?? '';
    const volumes = [...run.matchAll(/--volume (\S+)/g)].map((m) => m[1]);
    expect(volumes).toEqual([
      `/opt/comfyui/data/models:${COMFYUI_PATHS.models}:ro`,
      `/opt/comfyui/data/custom_nodes:${COMFYUI_PATHS.customNodes}:ro`,
      `/opt/comfyui/data/output:${COMFYUI_PATHS.output}`,
      `/opt/comfyui/data/input:${COMFYUI_PATHS.input}`,
      `/opt/comfyui/data/user:${COMFYUI_PATHS.user}`,
    ]);
    // The loopback only: the gateway reaches it through its SSH link.
    expect(run).toMatch(/--publish 127\.0\.0\.1:\$\{COMFYUI_PORT\}:8188 /);
    expect(run.trim().endsWith('${COMFYUI_IMAGE}')).toBe(true);
    // The writable folders belong to the container's user before it starts.
    expect(comfy).toContain('ExecStartPre=/usr/bin/chown -R ${COMFYUI_UID}:${COMFYUI_UID} /opt/comfyui/data/output /opt/comfyui/data/input /opt/comfyui/data/user\n');
    expect(read('etc/comfyui/comfyui.env')).toContain(`COMFYUI_UID=${COMFYUI_CONTAINER_USER.uid}\n`);
  });

  test('every unit runs an installed script and logs to its own file', () => {
    install();
    for (const name of SERVICES) {
      const text = unit(`${name}.service`);
      expect(text).toContain(`StandardOutput=append:/var/log/comfyui/${name}.log\n`);
      for (const [, script] of text.matchAll(/(\/opt\/comfyui\/bin\/\S+)/g)) expect(fs.existsSync(path.join(root, script))).toBe(true);
    }
    expect(unit('comfyui-output-sync.timer')).toContain('OnUnitActiveSec=5min\n');
  });

  test('systemd-analyze verify accepts every installed unit (real systemd, the host targets, a docker.service stand-in)', () => {
    install();
    // What systemd needs to resolve the units: the host's targets and core services, Docker's unit as
    // moby ships it (contrib/init/systemd/docker.service: Type=notify, ExecStart=/usr/bin/dockerd), and
    // the executables the units name.
    const lib = path.join(root, 'lib/systemd/system');
    fs.mkdirSync(lib, { recursive: true });
    for (const file of fs.readdirSync('/lib/systemd/system')) {
      if (/\.(target|slice|socket)$|^systemd-.*\.service$/.test(file)) fs.cpSync(path.join('/lib/systemd/system', file), path.join(lib, file), { dereference: true, recursive: true });
    }
    fs.writeFileSync(path.join(lib, 'docker.service'), '[Unit]\nDescription=Docker\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd\n[Install]\nWantedBy=multi-user.target\n');
    for (const bin of ['usr/bin/docker', 'usr/bin/dockerd', 'usr/bin/chown', 'bin/true']) {
      fs.mkdirSync(path.dirname(path.join(root, bin)), { recursive: true });
      fs.writeFileSync(path.join(root, bin), '#!/bin/sh\n', { mode: 0o755 });
    }
    const units = fs.readdirSync(path.join(root, 'etc/systemd/system')).filter((f) => /^comfyui.*\.(service|timer)$/.test(f));
    expect(units).toHaveLength(SERVICES.length + 3);
    for (const name of units) {
      const result = spawnSync('systemd-analyze', ['verify', `--root=${root}`, name], { encoding: 'utf8', timeout: 20_000 });
      expect({ name, status: result.status, stderr: result.stderr }).toEqual({ name, status: 0, stderr: '' });
    }
  });
});

test('refuses a config value that would break the agent JSON', () => {
  sb.write('root/etc/comfyui/comfyui.env', envFile(8188, { LOG_GROUP: '/aiassets/"x' }));
  const result = spawnSync('bash', [path.join(SCRIPTS, 'install.sh')], { env: sb.env({ ROOT: root }), encoding: 'utf8' });
  expect(result.status).not.toBe(0);
  expect(result.stdout).toContain('LOG_GROUP must be a plain name');
  expect(argsOf('systemctl')).toEqual([]);
});
