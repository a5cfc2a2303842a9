import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { envFile, Sandbox, SCRIPTS } from './harness';

const INSTANCE_STORE = '/dev/nvme1n1';
const DISKS = `/dev/nvme0n1 Amazon Elastic Block Store\n${INSTANCE_STORE} Amazon EC2 NVMe Instance Storage`;
const SERVICES = [
  'comfyui',
  'comfyui-data',
  'comfyui-idle',
  'comfyui-model-sync',
  'comfyui-output-flush',
  'comfyui-output-sync',
  'comfyui-spot-interruption',
];
const ENABLED = ['comfyui.service', 'comfyui-output-flush.service', 'comfyui-spot-interruption.service', 'comfyui-idle.timer', 'comfyui-output-sync.timer'];

let sb: Sandbox;
let root: string;

beforeEach(() => {
  sb = new Sandbox();
  root = sb.path('root');
  sb.write('root/etc/comfyui/comfyui.env', envFile(8188));
  // Disk stand-ins keep their state in files: mkfs leaves a filesystem, mount a mount.
  sb.stub('lsblk', 'printf "%s\\n" "$FAKE_DISKS"');
  sb.stub('blkid', 'f="$FAKE_STATE/fs-$(basename "${!#}")"; [ -f "$f" ] || exit 2; cat "$f"');
  sb.stub('mkfs.ext4', 'echo ext4 >"$FAKE_STATE/fs-$(basename "${!#}")"');
  sb.stub('mount', 'touch "$FAKE_STATE/mounted"');
  sb.stub('mountpoint', '[ -f "$FAKE_STATE/mounted" ]');
  sb.stub('systemctl');
  sb.stub('amazon-cloudwatch-agent-ctl');
  fs.mkdirSync(sb.path('state'));
});
afterEach(() => sb.cleanup());

function runScript(script: string, disks = DISKS) {
  const result = spawnSync('bash', [script], {
    env: sb.env({ ROOT: root, FAKE_STATE: sb.path('state'), FAKE_DISKS: disks }),
    encoding: 'utf8',
    timeout: 10_000,
  });
  expect(result.error).toBeUndefined();
  expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
  return result;
}

const install = (disks = DISKS) => runScript(path.join(SCRIPTS, 'install.sh'), disks);
/** What comfyui-data.service runs on every boot. */
const dataUnit = (disks = DISKS) => runScript(path.join(root, 'opt/comfyui/bin/data-volume.sh'), disks);

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

test('a second run leaves the file tree byte-identical and formats nothing again', () => {
  install();
  const first = snapshot(root);
  install();
  expect(snapshot(root)).toEqual(first);
  expect(argsOf('mkfs.ext4')).toEqual([['-q', '-F', '-L', 'comfyui-data', INSTANCE_STORE]]);
  expect(argsOf('mount')).toEqual([['-o', 'noatime', INSTANCE_STORE, path.join(root, 'opt/comfyui/data')]]);
  // No fstab: the boot unit mounts the instance store, so nothing can be appended twice.
  expect(fs.existsSync(path.join(root, 'etc/fstab'))).toBe(false);
  for (const [file, content] of Object.entries(first)) {
    const lines = content.split('\n').filter((line) => /^\S+=/.test(line));
    expect({ file, lines: new Set(lines).size }).toEqual({ file, lines: lines.length });
  }
});

test('installs the scripts, the data dir, the units and enables and starts them', () => {
  install();
  for (const script of ['common.sh', 'data-volume.sh', 'idle-watcher.sh', 'model-sync.sh', 'output-sync.sh', 'spot-interruption.sh']) {
    expect(fs.statSync(path.join(root, 'opt/comfyui/bin', script)).mode & 0o111).toBe(0o111);
  }
  for (const dir of ['opt/comfyui/data/models', 'opt/comfyui/data/output', 'var/log/comfyui', 'var/lib/comfyui']) {
    expect(fs.statSync(path.join(root, dir)).isDirectory()).toBe(true);
  }
  const systemctl = argsOf('systemctl');
  expect(systemctl[0]).toEqual(['daemon-reload']);
  expect(systemctl[1]).toEqual(['enable', ...ENABLED]);
  expect(systemctl.slice(2).flatMap((args) => args.filter((a) => /\.(service|timer)$/.test(a))).sort()).toEqual([...ENABLED].sort());
  for (const name of ENABLED) expect(unit(name)).toMatch(/^\[Install\]\nWantedBy=(multi-user|timers)\.target$/m);
});

test('every unit runs an installed script and logs to its own file', () => {
  install();
  const runs: Record<string, string> = {
    'comfyui-data': 'ExecStart=/opt/comfyui/bin/data-volume.sh',
    'comfyui-model-sync': 'ExecStart=/opt/comfyui/bin/model-sync.sh',
    'comfyui-output-sync': 'ExecStart=/opt/comfyui/bin/output-sync.sh',
    'comfyui-output-flush': 'ExecStop=/opt/comfyui/bin/output-sync.sh',
    'comfyui-idle': 'ExecStart=/opt/comfyui/bin/idle-watcher.sh',
    'comfyui-spot-interruption': 'ExecStart=/opt/comfyui/bin/spot-interruption.sh',
  };
  for (const name of SERVICES) {
    const text = unit(`${name}.service`);
    expect(text).toContain(`StandardOutput=append:/var/log/comfyui/${name}.log\n`);
    if (runs[name]) expect(text).toContain(`${runs[name]}\n`);
    for (const [, script] of text.matchAll(/(\/opt\/comfyui\/bin\/\S+)/g)) {
      expect(fs.existsSync(path.join(root, script))).toBe(true);
    }
  }
  expect(unit('comfyui-idle.timer')).toContain('OnCalendar=*-*-* *:*:00\n');
  expect(unit('comfyui-output-sync.timer')).toContain('OnUnitActiveSec=5min\n');
  expect(unit('comfyui-output-sync.timer')).not.toContain('@');
  expect(unit('comfyui-output-flush.service')).toMatch(/RemainAfterExit=yes[\s\S]*ExecStop=/);
});

test('ComfyUI starts after the model sync, on the GPU, with the data dir mounted', () => {
  install();
  const comfy = unit('comfyui.service');
  expect(comfy).toMatch(/^Requires=.*\bcomfyui-model-sync\.service\b/m);
  expect(comfy).toMatch(/^After=.*\bcomfyui-model-sync\.service\b/m);
  expect(unit('comfyui-model-sync.service')).toMatch(/^Before=comfyui\.service$/m);
  expect(comfy).toContain('EnvironmentFile=/etc/comfyui/comfyui.env\n');
  const run = comfy.match(/^ExecStart=([\s\S]*?[^\\])\n/m)?.[1].replace(/\\\n\s*/g, '') ?? '';
  expect(run.split(/\s+/)).toEqual([
    '/usr/bin/docker', 'run', '--rm', '--name', 'comfyui', '--gpus', 'all',
    '--publish', '0.0.0.0:${COMFYUI_PORT}:8188',
    '--volume', '/opt/comfyui/data/models:/root/ComfyUI/models',
    '--volume', '/opt/comfyui/data/output:/root/ComfyUI/output',
    '${COMFYUI_IMAGE}',
  ]);
  expect(comfy).toContain('ExecStop=-/usr/bin/docker stop --time 30 comfyui\n');
  expect(comfy).toContain('Restart=always\n');
});

test('writes the CloudWatch agent config (GPU metrics, one stream per unit) and loads it', () => {
  install();
  const configPath = path.join(root, 'opt/aws/amazon-cloudwatch-agent/etc/comfyui-agent.json');
  expect(argsOf('amazon-cloudwatch-agent-ctl')).toEqual([['-a', 'fetch-config', '-m', 'ec2', '-s', '-c', `file:${configPath}`]]);
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  expect(config.metrics.namespace).toBeUndefined(); // the agent's CWAgent, which the dashboard searches
  expect(config.metrics.metrics_collected.nvidia_gpu.measurement).toEqual([
    'utilization_gpu', 'utilization_memory', 'memory_used', 'memory_total', 'temperature_gpu', 'power_draw',
  ]);
  expect(config.metrics.metrics_collected.nvidia_gpu.append_dimensions).toEqual({ Environment: 'test' });
  const streams = config.logs.logs_collected.files.collect_list as { file_path: string; log_group_name: string; log_stream_name: string }[];
  const byPath = (a: { file_path: string }, b: { file_path: string }) => a.file_path.localeCompare(b.file_path);
  expect(streams.filter((s) => s.file_path.startsWith('/var/log/comfyui/')).sort(byPath)).toEqual(
    SERVICES.map((name) => ({ file_path: `/var/log/comfyui/${name}.log`, log_group_name: '/aiassets/test/gpu', log_stream_name: `{instance_id}/${name}` })).sort(byPath),
  );
  expect(streams).toContainEqual({ file_path: '/var/log/cloud-init-output.log', log_group_name: '/aiassets/test/gpu', log_stream_name: '{instance_id}/cloud-init-output' });
});

test('refuses a config value that would break the agent JSON', () => {
  sb.write('root/etc/comfyui/comfyui.env', envFile(8188, { LOG_GROUP: '/aiassets/"x' }));
  const result = spawnSync('bash', [path.join(SCRIPTS, 'install.sh')], { env: sb.env({ ROOT: root }), encoding: 'utf8' });
  expect(result.status).not.toBe(0);
  expect(result.stdout).toContain('LOG_GROUP must be a plain name');
  expect(argsOf('systemctl')).toEqual([]);
});

describe('the data dir on later boots (comfyui-data.service)', () => {
  test('after a stop/start the wiped instance store is formatted and mounted again', () => {
    install();
    fs.rmSync(sb.path('state'), { recursive: true });
    fs.mkdirSync(sb.path('state'));
    dataUnit();
    expect(argsOf('mkfs.ext4')).toHaveLength(2);
    expect(argsOf('mount')).toHaveLength(2);
  });

  test('after a reboot the instance store keeps its filesystem: mounted, not formatted', () => {
    install();
    fs.rmSync(sb.path('state/mounted'));
    dataUnit();
    expect(argsOf('mkfs.ext4')).toHaveLength(1);
    expect(argsOf('mount')).toHaveLength(2);
  });

  test('without an instance store the data dir stays on the root volume', () => {
    const result = install('/dev/nvme0n1 Amazon Elastic Block Store');
    expect(argsOf('mkfs.ext4')).toEqual([]);
    expect(argsOf('mount')).toEqual([]);
    expect(result.stdout).toContain('no instance store');
    expect(fs.statSync(path.join(root, 'opt/comfyui/data/models')).isDirectory()).toBe(true);
  });
});
