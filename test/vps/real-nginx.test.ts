import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { VpsBundleSettings } from '../../lib/vps/bundle';
import { tempDir } from '../support/synth';
import { type ContainerOptions, MiniContainer } from './support-compose/mini-container';
import { requireTools, TOOLS } from './support-compose/real-tools';
import { bindsOf, commandOf, envOf, type StackOnDisk, stackOnDisk } from './support-compose/stack-on-disk';
import { NO_GATEWAY, WITH_GATEWAY } from './support-compose/settings';

/**
 * The rendered nginx configuration in a real nginx, started the way the
 * container starts it: the compose entrypoint (assets/compose/nginx/start.sh,
 * which writes the gateway token map) execs the image's entrypoint (a stand-in
 * written from the upstream script, support-compose/nginx-entrypoint.sh),
 * which execs nginx. Certificates are self-signed by openssl like certbot.sh's placeholders.
 * The stack pins nginx 1.27.5; this is Debian 13's nginx 1.26.3 (the newest
 * Debian ships; the 1.27 changes are bug fixes and new directives this
 * configuration does not use).
 */
jest.setTimeout(120_000);


beforeAll(() => requireTools('nginx', 'nginxMimeTypes'));

/** The nginx service as a stand-in container: its bundle mounts and volumes plus what the image ships. */
function nginxContainer(stack: StackOnDisk, hosts: string[]): ContainerOptions {
  const tls = stack.volumes.tls;
  for (const host of hosts) {
    fs.mkdirSync(path.join(tls, host), { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-days', '1', '-subj', `/CN=${host}`,
      '-keyout', path.join(tls, host, 'privkey.pem'), '-out', path.join(tls, host, 'fullchain.pem')], { stdio: 'ignore' });
  }
  return {
    binds: [
      ...bindsOf(stack, 'nginx'),
      [TOOLS.nginx, '/usr/local/sbin/nginx'],
      [TOOLS.nginxMimeTypes, '/etc/nginx/mime.types'],
      [path.join(__dirname, 'support-compose', 'nginx-entrypoint.sh'), '/docker-entrypoint.sh'],
    ],
    // The image's worker user (uid 101 in nginx:alpine) and its temp folders.
    etcLines: [['passwd', 'nginx:x:1101:1101:nginx:/nonexistent:/usr/sbin/nologin'], ['group', 'nginx:x:1101:']],
    dirs: [['/var/lib/nginx', 'root'], ['/docker-entrypoint.d', 'root']],
    env: envOf(stack, 'nginx'),
  };
}

const hostsOf = (s: VpsBundleSettings) => (s.hostnames.gateway ? [s.hostnames.n8n, s.hostnames.sim, s.hostnames.gateway] : [s.hostnames.n8n, s.hostnames.sim]);

describe.each([
  ['with the gateway\'s public site', WITH_GATEWAY],
  ['without the gateway\'s public site', NO_GATEWAY],
])('nginx -t on the bundle %s', (_label, settings) => {
  test('accepts the configuration start.sh renders', async () => {
    const stack = stackOnDisk(settings);
    const command = commandOf(stack, 'nginx');
    expect(command).toEqual(['/bin/sh', '/opt/nginx/start.sh', 'nginx', '-g', 'daemon off;']);
    const run = await MiniContainer.run([...command.slice(0, 3), '-t'], nginxContainer(stack, hostsOf(settings)));
    expect(run.output).toMatch(/configuration file \/etc\/nginx\/nginx\.conf test is successful/);
    expect(run.status).toBe(0);
  });
});

describe('the running proxy (bundle with the gateway\'s public site)', () => {
  let stack: StackOnDisk;
  let nginx: MiniContainer;
  const curl = async (...args: string[]) => (await nginx.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '--max-time', '5', ...args])).output.trim();
  /** `count` requests from one curl (URL globbing, one kept-alive connection): the answered codes in order. */
  const burst = async (count: number, url: string, ...args: string[]) => {
    const out = tempDir('burst-');
    const run = await nginx.exec(['curl', '-s', '--max-time', '20', '--output-dir', out, '-o', 'r#1', '-w', '%{http_code}\\n', ...args, `${url}?n=[1-${count}]`], {}, 30_000);
    return run.output.trim().split('\n');
  };

  beforeAll(async () => {
    stack = stackOnDisk(WITH_GATEWAY);
    nginx = MiniContainer.start(commandOf(stack, 'nginx'), { ...nginxContainer(stack, hostsOf(WITH_GATEWAY)), stopSignal: 'QUIT' });
    await nginx.waitFor('an answer on port 80', async () => (await curl('http://127.0.0.1/nginx-health')) === '200', 60_000);
    // Docker's DNS and a stand-in gateway on 9000 (a static file server), both on the namespace's loopback.
    nginx.background(['python3', path.join(__dirname, 'support-compose', 'dns-stub.py')]);
    nginx.background(['python3', '-m', 'http.server', '9000', '--bind', '127.0.0.1', '--directory', tempDir('gateway-')]);
  });
  afterAll(async () => {
    if (nginx) expect(await nginx.stop()).not.toBeNull();
  });

  test('answers its health check only from the container itself', async () => {
    expect(await curl('http://127.0.0.1/nginx-health')).toBe('200');
    // Another loopback address stands for any other client: `allow` must run before the answer.
    expect(await curl('--interface', '127.0.0.2', 'http://127.0.0.1/nginx-health')).toBe('403');
  });

  test('redirects port 80 to HTTPS, rate-limited per client address', async () => {
    const codes = await burst(40, 'http://127.0.0.1/workflows', '-H', 'Host: n8n.dev.example.com');
    expect(codes[0]).toBe('301');
    // 10 r/s with a burst of 20: a tight loop of 40 gets 429 after about 21.
    expect(codes.filter((c) => c === '429').length).toBeGreaterThanOrEqual(10);
    expect(new Set(codes)).toEqual(new Set(['301', '429']));
  });

  test('refuses a wrong gateway token with 401, rate-limited, passes the right one, and lets signed /outputs links through without it', async () => {
    const gw = ['--resolve', 'gpu.dev.example.com:443:127.0.0.1', '-k'];
    await new Promise((r) => setTimeout(r, 5_000)); // let the earlier burst's bucket drain
    const codes = await burst(70, 'https://gpu.dev.example.com/mcp', ...gw, '-H', 'Authorization: Bearer wrong-token-wrong-token-wrong-token');
    expect(codes[0]).toBe('401');
    expect(codes.filter((c) => c === '429').length).toBeGreaterThanOrEqual(10);
    await new Promise((r) => setTimeout(r, 5_000));
    // The header from a private file: the token stays off curl's command line.
    const header = path.join(tempDir('header-'), 'authorization');
    fs.writeFileSync(header, `Authorization: Bearer ${stack.secrets.GATEWAY_TOKEN}\n`, { mode: 0o600 });
    expect(await curl('--max-time', '10', '-H', `@${header}`, ...gw, 'https://gpu.dev.example.com/')).toBe('200');
    // The stand-in gateway (a static file server) answers 404 for a link it does not hold: nginx passed it on.
    expect(await curl('--max-time', '10', ...gw, 'https://gpu.dev.example.com/outputs/p1/x.png?exp=1&sig=abc')).toBe('404');
    expect(await curl('--max-time', '10', ...gw, 'https://gpu.dev.example.com/comfyui/queue')).toBe('401');
  });

  test('serves each host name with its own certificate over HTTP/2, refuses unknown names', async () => {
    for (const host of hostsOf(WITH_GATEWAY)) {
      const tls = await nginx.exec(['sh', '-c', `openssl s_client -connect 127.0.0.1:443 -servername ${host} -alpn h2 </dev/null 2>/dev/null`]);
      expect(tls.output).toContain('ALPN protocol: h2');
      expect(tls.output).toMatch(new RegExp(`subject=CN ?= ?${host.replace(/\./g, '\\.')}`));
    }
    const unknown = await nginx.exec(['sh', '-c', 'openssl s_client -connect 127.0.0.1:443 -servername other.example.com </dev/null 2>&1']);
    expect(unknown.output).toMatch(/alert|handshake failure/i);
  });
});
