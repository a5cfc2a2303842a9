import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * provision.sh in a temporary ROOT, with recording stand-ins for every system
 * command (test/vps/support-compose/stand-in.sh) and only a few harmless real
 * tools on PATH, so nothing can touch this machine.
 */
const SCRIPT = path.join(__dirname, '..', '..', 'assets', 'compose', 'provision.sh');
const STAND_IN = path.join(__dirname, 'support-compose', 'stand-in.sh');
const STAND_INS = ['id', 'getent', 'useradd', 'usermod', 'dpkg-query', 'dpkg', 'apt-get', 'systemctl', 'ufw', 'curl', 'gpg', 'fallocate', 'mkswap', 'swapon', 'chown'];
const REAL_TOOLS = ['bash', 'cat', 'grep', 'mkdir', 'chmod', 'mv', 'rm', 'dirname', 'sed', 'tr', 'cut'];
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2xq0vJ7mQk3fHcR2bT8yW5pLs9uXnDgA1oVeZtKc4M operator@laptop';
const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFq8wT2nR6yXb1cVmK0sJ4hLd7pUe3oZaG9iNfQxWr5Y second@desk';

/** Calls that only read state; anything else the script runs is a mutation. */
const QUERIES = [/^id /, /^getent /, /^dpkg-query /, /^dpkg --print-architecture$/, /^systemctl is-(enabled|active) /, /^ufw (status|show added)$/, /^swapon --show/, /^gpg --show-keys /];
const mutations = (calls: string[]) => calls.filter((call) => !QUERIES.some((q) => q.test(call)));

const which = (tool: string) => spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
const BASH = which('bash');

let base: string;
beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'provision-test-'));
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

interface Box {
  root: string;
  run(args?: string[], input?: string, env?: Record<string, string>): { status: number | null; stdout: string; stderr: string; calls: string[] };
}

function sandbox(): Box {
  const dir = fs.mkdtempSync(path.join(base, 'box-'));
  const [bin, tools, root, state, log] = ['bin', 'tools', 'root', 'state', 'calls.log'].map((p) => path.join(dir, p));
  for (const folder of [bin, tools, path.join(root, 'etc', 'default')]) fs.mkdirSync(folder, { recursive: true });
  for (const command of STAND_INS) {
    fs.copyFileSync(STAND_IN, path.join(bin, command));
    fs.chmodSync(path.join(bin, command), 0o755);
  }
  for (const tool of REAL_TOOLS) fs.symlinkSync(which(tool), path.join(tools, tool));
  fs.writeFileSync(path.join(root, 'etc', 'os-release'), 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nVERSION_CODENAME=noble\n');
  fs.writeFileSync(path.join(root, 'etc', 'default', 'ufw'), 'IPV6=yes\nDEFAULT_INPUT_POLICY="ACCEPT"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n');
  fs.writeFileSync(path.join(root, 'etc', 'fstab'), 'UUID=0000 / ext4 defaults 0 1\n');
  return {
    root,
    run(args = [], input = `${KEY}\n`, env = {}) {
      fs.writeFileSync(log, '');
      const result = spawnSync(BASH, [SCRIPT, ...args], {
        input,
        encoding: 'utf8',
        env: { PATH: `${bin}:${tools}`, ROOT: root, STANDIN_STATE: state, STANDIN_LOG: log, LANG: 'C', ...env },
      });
      const calls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((c) => c.split(root).join('<root>'));
      return { status: result.status, stdout: result.stdout, stderr: result.stderr, calls };
    },
  };
}

/** Every path under dir with its type, mode and content. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      const stat = fs.lstatSync(file);
      const mode = (stat.mode & 0o7777).toString(8);
      if (entry.isDirectory()) {
        out[path.relative(dir, file)] = `dir ${mode}`;
        walk(file);
      } else out[path.relative(dir, file)] = `file ${mode} ${fs.readFileSync(file, 'utf8')}`;
    }
  };
  walk(dir);
  return out;
}

const read = (box: Box, file: string) => fs.readFileSync(path.join(box.root, file), 'utf8');

test('the first run installs and configures everything; the second changes nothing', () => {
  const box = sandbox();
  const first = box.run();
  expect(first.stderr).toBe('');
  expect(first.status).toBe(0);
  expect(mutations(first.calls)).toEqual(
    expect.arrayContaining([
      'apt-get install -y -q docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin',
      'curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o <root>/etc/apt/keyrings/docker.asc.tmp',
      'systemctl enable --now docker',
      'useradd --create-home --shell /bin/bash --user-group deploy',
      'usermod -aG docker deploy',
      'chown deploy:deploy <root>/home/deploy/.ssh/authorized_keys',
      'ufw default deny incoming',
      'ufw allow 22/tcp',
      'ufw allow 80/tcp',
      'ufw allow 443/tcp',
      'ufw --force enable',
      'apt-get install -y -q fail2ban python3-systemd',
      'systemctl enable --now fail2ban',
      'apt-get install -y -q unattended-upgrades',
      'systemctl enable --now unattended-upgrades',
      'fallocate -l 2G <root>/swapfile',
      'mkswap <root>/swapfile',
      'swapon <root>/swapfile',
    ]),
  );
  // The SSH rule comes before the firewall is switched on.
  expect(first.calls.indexOf('ufw allow 22/tcp')).toBeLessThan(first.calls.indexOf('ufw --force enable'));
  expect(read(box, 'home/deploy/.ssh/authorized_keys')).toBe(`${KEY}\n`);
  expect(read(box, 'etc/apt/sources.list.d/docker.list')).toBe(
    'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu noble stable\n',
  );
  expect(read(box, 'etc/fail2ban/jail.d/sshd.local')).toMatch(/^\[sshd\]\nenabled = true\nport = 22\n/);
  expect(read(box, 'etc/apt/apt.conf.d/20auto-upgrades')).toContain('APT::Periodic::Unattended-Upgrade "1";');
  expect(read(box, 'etc/fstab')).toMatch(/\n\/swapfile none swap sw 0 0\n$/);
  expect(read(box, 'etc/default/ufw')).toContain('DEFAULT_INPUT_POLICY="DROP"');
  expect(fs.statSync(path.join(box.root, 'opt', 'AiAssets')).isDirectory()).toBe(true);
  const after = tree(box.root);

  const second = box.run();
  expect(second.status).toBe(0);
  expect(second.calls.length).toBeGreaterThan(10); // it did look
  expect(mutations(second.calls)).toEqual([]);
  expect(tree(box.root)).toEqual(after);
});

test('takes the key from --key-file, appends a new key once and keeps keys when none is given', () => {
  const box = sandbox();
  const keyFile = path.join(box.root, '..', 'operator.pub');
  fs.writeFileSync(keyFile, `# operator\n${KEY}\n\n`);
  expect(box.run(['--user', 'ops', '--key-file', keyFile], '').status).toBe(0);
  expect(read(box, 'home/ops/.ssh/authorized_keys')).toBe(`${KEY}\n`);

  const more = box.run(['--user', 'ops'], `${KEY}\n${OTHER_KEY}\n`);
  expect(more.status).toBe(0);
  expect(read(box, 'home/ops/.ssh/authorized_keys')).toBe(`${KEY}\n${OTHER_KEY}\n`);

  const none = box.run(['--user', 'ops'], '');
  expect(none.status).toBe(0);
  expect(mutations(none.calls)).toEqual([]);
});

test.each([
  ['a private key', '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n', 'b3BlbnNzaC1rZXkt'],
  ['a key with a shell command', `${KEY}\nssh-ed25519 AAAA;rm -rf /\n`, 'rm -rf'],
])('rejects %s on stdin without writing or echoing it', (_label, input, secretPart) => {
  const box = sandbox();
  const run = box.run([], input);
  expect(run.status).not.toBe(0);
  expect(run.stderr).toMatch(/key line \d is not an OpenSSH public key/);
  expect(run.stderr + run.stdout).not.toContain(secretPart);
  expect(mutations(run.calls)).toEqual([]); // checked before anything changes
  expect(fs.existsSync(path.join(box.root, 'home', 'deploy', '.ssh', 'authorized_keys'))).toBe(false);
});

test('refuses to run without a key when none is authorized yet', () => {
  const run = sandbox().run([], '');
  expect(run.status).not.toBe(0);
  expect(run.stderr).toContain('no public key given');
  expect(mutations(run.calls)).toEqual([]);
});

test('refuses to run as a normal user, before changing anything', () => {
  const run = sandbox().run([], `${KEY}\n`, { STANDIN_UID: '1000' });
  expect(run.status).not.toBe(0);
  expect(run.stderr).toContain('run as root');
  expect(mutations(run.calls)).toEqual([]);
});

test('refuses a Docker apt key with the wrong fingerprint', () => {
  const box = sandbox();
  const run = box.run([], `${KEY}\n`, { STANDIN_FINGERPRINT: '0000000000000000000000000000000000000000' });
  expect(run.status).not.toBe(0);
  expect(run.stderr).toContain('does not have the fingerprint 9DC858229FC7DD38854AE2D88D81803C0EBFCD88');
  expect(fs.readdirSync(path.join(box.root, 'etc', 'apt', 'keyrings'))).toEqual([]);
  expect(mutations(run.calls).filter((c) => c.includes('docker-ce'))).toEqual([]);
});

test('leaves an existing swap alone and rejects a bad user name', () => {
  const box = sandbox();
  fs.mkdirSync(path.join(box.root, '..', 'state'), { recursive: true });
  fs.writeFileSync(path.join(box.root, '..', 'state', 'swaps'), '/dev/vda2\n');
  const run = box.run();
  expect(run.status).toBe(0);
  expect(run.calls.filter((c) => /^(fallocate|mkswap|swapon <root>)/.test(c))).toEqual([]);
  expect(fs.existsSync(path.join(box.root, 'swapfile'))).toBe(false);

  const bad = box.run(['--user', 'Root;x']);
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain('--user "Root;x": allowed is a Linux user name');
});

test('the mutation filter would notice a repeated install', () => {
  expect(mutations(['dpkg-query -W -f=${Status} ufw', 'apt-get install -y -q ufw', 'ufw status'])).toEqual(['apt-get install -y -q ufw']);
});
