import Ajv from 'ajv';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { COMPOSE_DIR, envVariables, renderBundle, type VpsBundle, type VpsBundleSettings } from '../../lib/vps/bundle';
import { bundleSettingsFor } from '../../lib/vps/bundle-settings';
import { ENVIRONMENT_NAMES } from '../../lib/config/environments';
import { loadEnvironment } from '../../lib/config/load';
import { tempDir } from '../support/synth';
import {
  badPorts,
  badServerBlocks,
  badVolumes,
  type Compose,
  documentedVariables,
  envOf,
  literalSecrets,
  missingHealthOrRestart,
  oneShotServices,
  referencedVariables,
  resourceTotals,
  unpinnedImages,
} from './support-compose/compose-rules';
import { healthCheckPrograms, missingTools } from './support-compose/image-tools';
import { GATEWAY_DEFAULTS, NO_GATEWAY, WITH_GATEWAY } from './support-compose/settings';
import { GATEWAY_PROGRAM_FILE, gatewayProgram } from '../../lib/vps/gateway-program';


interface Rendered {
  settings: VpsBundleSettings;
  bundle: VpsBundle;
  text: string;
  compose: Compose;
  hosts: string[];
}
function render(settings: VpsBundleSettings): Rendered {
  const bundle = renderBundle(settings);
  const text = bundle.files['docker-compose.yml'];
  const { n8n, sim, gateway } = settings.hostnames;
  const hosts = gateway ? [n8n, sim, gateway] : [n8n, sim];
  return { settings, bundle, text, compose: parse(text, { merge: true }) as Compose, hosts };
}
const VARIANTS: Array<[string, Rendered]> = [
  ['with the gateway\'s public site', render(WITH_GATEWAY)],
  ['without the gateway\'s public site', render(NO_GATEWAY)],
];
const clone = (c: Compose): Compose => structuredClone(c);

// The compose-spec schema dclint bundles (draft-07; Ajv 8 speaks draft-07 by default).
const schema = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'node_modules', 'dclint', 'schemas', 'compose.schema.json'), 'utf8'));
const { $schema: schemaDialect, ...schemaBody } = schema;
const validateSchema = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true }).compile(schemaBody);
const schemaErrors = (doc: unknown) => (validateSchema(doc) ? [] : (validateSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message}`));

test('the compose-spec schema is draft-07 and rejects an invalid file', () => {
  expect(schemaDialect).toMatch(/draft-07/);
  const broken = clone(VARIANTS[0][1].compose) as unknown as { services: Record<string, Record<string, unknown>> };
  broken.services.nginx.ports = '80:80'; // must be a list
  broken.services.redis.restart_policy = 'always'; // not a compose key
  expect(schemaErrors(broken).length).toBeGreaterThanOrEqual(2);
});

describe.each(VARIANTS)('rendered stack %s', (_label, { settings, bundle, text, compose, hosts }) => {
  test('validates against the compose-spec schema', () => {
    expect(schemaErrors(compose)).toEqual([]);
  });

  test('has a fixed project name, so every release reuses the same volumes', () => {
    expect(compose.name).toBe('aiassets-dev');
  });

  test('pins every image to a specific version', () => {
    expect(unpinnedImages(compose)).toEqual([]);
  });

  test('gives every service a health check and a restart policy', () => {
    expect(missingHealthOrRestart(compose)).toEqual([]);
  });

  test('publishes ports only on nginx, exactly 80 and 443', () => {
    expect(badPorts(compose)).toEqual([]);
  });

  test('uses only named volumes plus read-only config from the bundle', () => {
    expect(badVolumes(compose, Object.keys(bundle.files))).toEqual([]);
  });

  test('holds no literal secret: every secret comes from .env with :?', () => {
    expect(literalSecrets(compose, text)).toEqual([]);
    expect(referencedVariables(text)).toEqual(envVariables(settings).sort());
  });

  test('documents every referenced variable in .env.example', () => {
    const { documented, problems } = documentedVariables(bundle.files['.env.example']);
    expect(problems).toEqual([]);
    expect(referencedVariables(text).filter((v) => !documented.includes(v))).toEqual([]);
  });

  test('fits 2 vCPU and 8 GB with room for the OS', () => {
    const { cpus, memoryMiB, problems } = resourceTotals(compose);
    expect(problems).toEqual([]);
    expect(cpus).toBeLessThanOrEqual(2);
    expect(memoryMiB).toBeLessThanOrEqual(7 * 1024);
  });

  test('keeps databases on the internal network only', () => {
    expect(compose.networks?.backend?.internal).toBe(true);
    for (const name of ['postgres', 'redis', 'sim-realtime', 'sim-migrations']) expect(compose.services[name].networks).toEqual(['backend']);
    for (const name of ['n8n', 'n8n-worker', 'sim', 'ollama']) expect(compose.services[name].networks).toEqual(['backend', 'egress']);
  });

  test('renders one TLS server block per host name, with WebSocket upgrade and the rate limit', () => {
    const sites = Object.entries(bundle.files).filter(([f]) => f.startsWith('nginx/sites/')).map(([, c]) => c);
    expect(badServerBlocks(sites, hosts)).toEqual([]);
    const nginxConf = bundle.files['nginx/nginx.conf'];
    expect(nginxConf).toMatch(/limit_req_zone \$binary_remote_addr zone=perip:10m rate=10r\/s;/);
    expect(nginxConf).toMatch(/map \$http_upgrade \$connection_upgrade/);
    const port80 = bundle.files['nginx/sites/00-default.conf'];
    expect(port80).toContain(`server_name ${hosts.join(' ')};`);
    expect(port80).toMatch(/location \^~ \/\.well-known\/acme-challenge\/ \{\s+root \/var\/www\/certbot;/);
    expect(port80).toContain('return 301 https://$host$request_uri;');
  });

  test('asks certbot for exactly the served host names with the configured e-mail', () => {
    const env = envOf(compose.services.certbot);
    expect(String(env.CERTBOT_DOMAINS).split(' ')).toEqual(hosts);
    expect(env.CERTBOT_EMAIL).toBe('ops@example.com');
  });

  test('leaves no template placeholder or marker in any file', () => {
    // The gateway program is bundled code, not a rendered template (its libraries hold `{{ ... }}` in code).
    for (const [file, content] of Object.entries(bundle.files).filter(([f]) => f !== GATEWAY_PROGRAM_FILE)) {
      expect([file, content.match(/\{\{[^}]*\}\}|@gateway-(begin|end)/)?.[0]]).toEqual([file, undefined]);
    }
  });

  test('fills in the n8n host name (a placeholder with a digit)', () => {
    const env = envOf(compose.services.n8n);
    expect([env.N8N_HOST, env.N8N_EDITOR_BASE_URL, env.WEBHOOK_URL]).toEqual([settings.hostnames.n8n, `https://${settings.hostnames.n8n}/`, `https://${settings.hostnames.n8n}/`]);
  });

  test('runs health checks and entrypoints only with programs the pinned images ship', () => {
    expect(missingTools(compose.services)).toEqual([]);
  });

  test('ensures the databases in a one-shot job on every deploy, before any app starts', () => {
    expect(oneShotServices(compose)).toEqual(['db-init', 'sim-migrations']);
    expect(compose.services.postgres.volumes?.some((v) => String(v).includes('docker-entrypoint-initdb.d'))).toBe(false);
    expect(compose.services['db-init'].depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(compose.services.n8n.depends_on).toMatchObject({ 'db-init': { condition: 'service_completed_successfully' } });
    expect(compose.services['sim-migrations'].depends_on).toEqual({ 'db-init': { condition: 'service_completed_successfully' } });
  });

  test('runs Sim like upstream: cron with its secret, Redis for app and realtime', () => {
    expect(envOf(compose.services['sim-cron'])).toMatchObject({ SIM_URL: 'http://sim:3000', CRON_SECRET: expect.stringMatching(/^\$\{SIM_CRON_SECRET:\?/) });
    expect(envOf(compose.services.sim).CRON_SECRET).toBe(envOf(compose.services['sim-cron']).CRON_SECRET);
    for (const name of ['sim', 'sim-realtime']) expect(envOf(compose.services[name]).REDIS_URL).toMatch(/^redis:\/\/default:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379\/1$/);
    const tags = new Set(['sim', 'sim-realtime', 'sim-migrations', 'sim-cron'].map((n) => compose.services[n].image?.split(':')[1]));
    expect([...tags]).toEqual(['v0.8.9']);
  });
});

// Each rule must be able to fail: a broken copy of the real stack is caught.
// breakIt may return a replacement for the compose text.
test.each<[string, (c: Compose, text: string) => string | void, (c: Compose, text: string) => string[]]>([
  ['latest tag', (c) => void (c.services.redis.image = 'redis:latest'), (c) => unpinnedImages(c)],
  ['floating major tag', (c) => void (c.services.postgres.image = 'postgres:15'), (c) => unpinnedImages(c)],
  ['missing health check', (c) => void delete c.services.ollama.healthcheck, (c) => missingHealthOrRestart(c)],
  ['restart policy of on-failure', (c) => void (c.services.sim.restart = 'on-failure'), (c) => missingHealthOrRestart(c)],
  ['published database port', (c) => void (c.services.postgres.ports = ['5432:5432']), (c) => badPorts(c)],
  ['third nginx port', (c) => void (c.services.nginx.ports = ['80:80', '443:443', '8080:8080']), (c) => badPorts(c)],
  ['host bind mount', (c) => void c.services.n8n.volumes?.push('/srv/n8n:/data'), (c) => badVolumes(c, Object.keys(VARIANTS[0][1].bundle.files))],
  ['writable config mount', (c) => void (c.services.redis.volumes = ['./redis/redis.conf:/etc/redis.conf']), (c) => badVolumes(c, Object.keys(VARIANTS[0][1].bundle.files))],
  ['volume not declared at top level', (c) => void (c.services.redis.volumes = ['cache:/data']), (c) => badVolumes(c, Object.keys(VARIANTS[0][1].bundle.files))],
  ['literal password', (c) => void ((envOf(c.services.postgres) as Record<string, string>).POSTGRES_PASSWORD = 'hunter2hunter2'), literalSecrets],
  ['password in a URL', (c) => void ((envOf(c.services.sim) as Record<string, string>).DATABASE_URL = 'postgresql://sim:hunter2@postgres/sim'), literalSecrets],
  ['defaulted secret', (_c, text) => `${text}\nx-extra: \${REDIS_PASSWORD:-redis}\n`, literalSecrets],
  ['memory total over budget', (c) => void (c.services.ollama.deploy = { resources: { limits: { cpus: '0.5', memory: '4G' } } }), (c) => overBudget(c)],
  ['missing CPU limit', (c) => void delete c.services.n8n.deploy, (c) => resourceTotals(c).problems],
  ['one-shot job that restarts', (c) => void (c.services['db-init'].restart = 'unless-stopped'), (c) => missingHealthOrRestart(c)],
  ['wget health check in the Sim image (Debian slim plus curl)', (c) => void (c.services.sim.healthcheck = { test: ['CMD', 'wget', '-q', '--spider', 'http://127.0.0.1:3000/'] }), (c) => missingTools(c.services)],
  ['wget in a shell health check of the Ollama image', (c) => void (c.services.ollama.healthcheck = { test: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1:11434 | grep -q Ollama'] }), (c) => missingTools(c.services)],
  ['image bumped without re-reading its build files', (c) => void (c.services.sim.image = 'ghcr.io/simstudioai/simstudio:v0.9.0'), (c) => missingTools(c.services)],
])('the rules catch a %s', (_label, breakIt, rule) => {
  const compose = clone(VARIANTS[0][1].compose);
  const text = VARIANTS[0][1].text;
  expect(rule(compose, text)).toEqual([]);
  const brokenText = breakIt(compose, text) ?? text;
  expect(rule(compose, brokenText).length).toBeGreaterThan(0);
});

function overBudget(c: Compose): string[] {
  const { cpus, memoryMiB } = resourceTotals(c);
  return cpus > 2 || memoryMiB > 7 * 1024 ? [`${cpus} CPUs, ${memoryMiB} MiB`] : [];
}

test('the rules catch an undocumented variable, a server block without WebSocket headers and a missing one', () => {
  expect(documentedVariables('# ok\nA=change-me\nB=change-me\n').problems).toEqual(['B has no comment above it']);
  expect(documentedVariables('# real value\nA=3f9a0c\n').problems).toHaveLength(1);
  const site = VARIANTS[0][1].bundle.files['nginx/sites/n8n.dev.example.com.conf'];
  expect(badServerBlocks([site.replace(/proxy_set_header Upgrade .*\n/, '')], ['n8n.dev.example.com'])).toHaveLength(1);
  expect(badServerBlocks([site.replace(/limit_req zone=perip.*\n/, '')], ['n8n.dev.example.com'])).toHaveLength(1);
  expect(badServerBlocks([site], ['n8n.dev.example.com', 'sim.dev.example.com'])).toEqual(['sim.dev.example.com: 0 TLS server blocks']);
  expect(badServerBlocks([site, site], ['n8n.dev.example.com'])).toEqual(['n8n.dev.example.com: 2 TLS server blocks']);
});

test('.env.example documents exactly the variables some variant uses', () => {
  const used = new Set(VARIANTS.flatMap(([, r]) => referencedVariables(r.text)));
  expect(documentedVariables(VARIANTS[0][1].bundle.files['.env.example']).documented).toEqual([...used].sort());
});

describe('the gateway', () => {
  const [, withGateway] = VARIANTS[0];
  const [, without] = VARIANTS[1];

  test('runs the bundled program on the pinned Node image, told its settings, in both variants', () => {
    for (const r of [withGateway, without]) {
      const gateway = r.compose.services.gateway;
      expect(gateway.image).toMatch(/^node:24\.11\.1-alpine3\.22@sha256:[0-9a-f]{64}$/);
      expect(gateway.command).toEqual(['node', `/opt/${GATEWAY_PROGRAM_FILE}`]);
      expect(r.bundle.files[GATEWAY_PROGRAM_FILE]).toBe(gatewayProgram());
      const env = envOf(gateway);
      expect(env.CONTROL_FUNCTION_NAME).toBe('AiAssets-dev-gpu-control');
      expect(env.AWS_REGION).toBe('us-east-1');
      expect([env.MAX_QUEUE, env.HOLD_TIMEOUT_SECONDS, env.PROMPTS_PER_INSTANCE, env.MAX_ATTEMPTS, env.OUTPUT_CACHE_MB]).toEqual(['100', '900', '4', '3', '2000']);
      expect(env.AWS_SECRET_ACCESS_KEY).toMatch(/^\$\{GATEWAY_AWS_SECRET_ACCESS_KEY:\?/);
    }
    expect(envOf(withGateway.compose.services.gateway).PUBLIC_BASE_URL).toBe('https://gpu.dev.example.com');
    expect(envOf(without.compose.services.gateway).PUBLIC_BASE_URL).toBe('http://gateway:9000');
  });

  test('has a public site with a bearer-token check only with vps.hostnames.gateway; signed /outputs links pass without it', () => {
    const site = withGateway.bundle.files['nginx/sites/gpu.dev.example.com.conf'];
    expect(site).toMatch(/try_files \S+ @gateway_\$gateway_authorized;/);
    expect(site).toMatch(/location @gateway_0 \{\s+return 401;/);
    expect(site).toMatch(/location \/outputs\/ \{\s+set \$upstream http:\/\/gateway:9000;/);
    expect(envOf(withGateway.compose.services.nginx).GATEWAY_TOKEN).toMatch(/^\$\{GATEWAY_TOKEN:\?/);
    expect(envOf(without.compose.services.nginx).GATEWAY_TOKEN).toBeUndefined();
    expect(without.text).not.toMatch(/GATEWAY_TOKEN|gpu\.dev/);
    expect(Object.keys(without.bundle.files).filter((f) => f.startsWith('nginx/sites/gpu'))).toEqual([]);
  });

  test('renders an optional fallback endpoint and refuses settings outside the config\'s ranges', () => {
    const fallback = render({ ...WITH_GATEWAY, gateway: { ...WITH_GATEWAY.gateway, fallbackComfyuiUrl: 'https://comfy.example.net/' } });
    expect(envOf(fallback.compose.services.gateway).FALLBACK_COMFYUI_URL).toBe('https://comfy.example.net/');
    expect(envOf(withGateway.compose.services.gateway).FALLBACK_COMFYUI_URL).toBe('');
    expect(() => renderBundle({ ...WITH_GATEWAY, gateway: { ...WITH_GATEWAY.gateway, maxQueue: 0, fallbackComfyuiUrl: 'http://x.example.com/?token=1' } })).toThrow(
      /gateway\.maxQueue = 0: allowed is a whole number from 1 to 1000\n {2}- gateway\.fallbackComfyuiUrl = "http:\/\/x\.example\.com\/\?token=1": allowed is an https URL/,
    );
  });
});

describe('renderBundle', () => {
  test('is deterministic: same input, same files in sorted order, same hash', () => {
    const again = renderBundle(structuredClone(WITH_GATEWAY));
    expect(again).toEqual(VARIANTS[0][1].bundle);
    expect(again.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(Object.keys(again.files)).toEqual(Object.keys(again.files).slice().sort());
  });

  test('changes the hash when any input changes', () => {
    const hashes = [
      WITH_GATEWAY,
      NO_GATEWAY,
      { ...WITH_GATEWAY, envName: 'staging' },
      { ...WITH_GATEWAY, letsEncryptEmail: 'admin@example.com' },
      { ...WITH_GATEWAY, hostnames: { ...WITH_GATEWAY.hostnames, sim: 'studio.dev.example.com' } },
      { ...WITH_GATEWAY, gateway: { ...WITH_GATEWAY.gateway, promptsPerInstance: 5 } },
    ].map((s) => renderBundle(s).hash);
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  test.each<[string, Partial<VpsBundleSettings>, RegExp]>([
    ['an IP address as host', { hostnames: { n8n: '203.0.113.10', sim: 'sim.example.com' } }, /hostnames\.n8n = "203\.0\.113\.10": allowed is a lower-case DNS name/],
    ['an upper-case host', { hostnames: { n8n: 'n8n.example.com', sim: 'Sim.Example.com' } }, /hostnames\.sim = "Sim\.Example\.com": allowed is/],
    ['a host name with a space', { hostnames: { n8n: 'n8n.example.com', sim: 'sim .example.com' } }, /hostnames\.sim = "sim \.example\.com": allowed is/],
    ['the same host twice', { hostnames: { n8n: 'app.example.com', sim: 'app.example.com' } }, /hostnames\.sim = "app\.example\.com": allowed is a host name different from hostnames\.n8n/],
    ['a bad e-mail', { letsEncryptEmail: 'ops' }, /letsEncryptEmail = "ops": allowed is an e-mail address/],
    ['an e-mail with a quote', { letsEncryptEmail: 'o"ps@example.com' }, /letsEncryptEmail = "o\\"ps@example\.com": allowed is/],
    ['a gateway host name equal to n8n\'s', { hostnames: { n8n: 'app.example.com', sim: 'sim.example.com', gateway: 'app.example.com' } }, /hostnames\.gateway = "app\.example\.com": allowed is a host name different from hostnames\.n8n/],
    ['a control function name with a colon', { gateway: { ...GATEWAY_DEFAULTS, controlFunctionName: 'a:b' } }, /gateway\.controlFunctionName = "a:b": allowed is a Lambda function name/],
    ['an app name with a slash', { appName: 'ai/assets' }, /appName = "ai\/assets": allowed is a letter followed by/],
    ['an upper-case environment', { envName: 'Prod' }, /envName = "Prod": allowed is a lower-case letter/],
  ])('rejects %s, naming the field, the value and what is allowed', (_label, patch, message) => {
    expect(() => renderBundle({ ...WITH_GATEWAY, ...patch })).toThrow(message);
  });

  test('lists every bad field in one error', () => {
    expect(() => renderBundle({ ...WITH_GATEWAY, envName: '', letsEncryptEmail: '' })).toThrow(/Invalid VPS bundle settings:\n {2}- envName = "".*\n {2}- letsEncryptEmail = ""/);
  });

  test('ships the scripts the compose file mounts and no template or provisioning file', () => {
    const files = Object.keys(VARIANTS[0][1].bundle.files);
    expect(files).toEqual(expect.arrayContaining(['certbot/certbot.sh', 'certbot/deploy-hook.sh', 'nginx/start.sh', 'postgres/ensure-databases.sh', 'redis/start.sh', '.env.example']));
    expect(files.filter((f) => f.includes('templates') || f === 'provision.sh')).toEqual([]);
  });

  test('leaves no placeholder in any file of any environment\'s bundle', () => {
    for (const name of ENVIRONMENT_NAMES) {
      const bundle = renderBundle(bundleSettingsFor(loadEnvironment(name)));
      const templates = Object.entries(bundle.files).filter(([file]) => file !== GATEWAY_PROGRAM_FILE);
      for (const [file, content] of templates) expect([name, file, content.match(/\{\{[^}]*\}\}/)?.[0]]).toEqual([name, file, undefined]);
    }
  });

  test('refuses to produce a bundle with a placeholder left in it', () => {
    const dir = templateCopy();
    fs.appendFileSync(path.join(dir, 'nginx/nginx.conf'), '# {{N8N_HOST}}\n');
    expect(() => renderBundle(WITH_GATEWAY, { templateDir: dir })).toThrow(/still holds template placeholders:\n {2}- nginx\/nginx\.conf: \{\{N8N_HOST\}\}/);
  });

  test.each([
    ['a file', 'nginx/nginx.conf'],
    ['a folder', 'redis'],
    ['the template folder itself', ''],
  ])('refuses a symbolic link as %s, naming it and where it points', (_label, link) => {
    const dir = templateCopy();
    const outside = tempDir('outside-');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'outside the repository\n');
    const target = path.join(dir, link);
    if (link === '') {
      const linked = path.join(tempDir('linked-'), 'compose');
      fs.symlinkSync(dir, linked);
      expect(() => renderBundle(WITH_GATEWAY, { templateDir: linked })).toThrow(new RegExp(`${linked} is a symbolic link \\(to ${dir}\\): the VPS bundle takes only regular files`));
      return;
    }
    fs.rmSync(target, { recursive: true });
    fs.symlinkSync(outside, target);
    expect(() => renderBundle(WITH_GATEWAY, { templateDir: dir })).toThrow(new RegExp(`${target} is a symbolic link \\(to ${outside}\\).*replace the link with the file itself`));
  });

  test('renders a plain copy of the templates exactly like the originals', () => {
    expect(renderBundle(WITH_GATEWAY, { templateDir: templateCopy() })).toEqual(VARIANTS[0][1].bundle);
  });

  test('ships nothing that looks like a generated secret', () => {
    // The gateway program is built from this repository and its locked dependencies, not rendered; image digests are public.
    for (const [file, content] of Object.entries(VARIANTS[0][1].bundle.files).filter(([f]) => f !== GATEWAY_PROGRAM_FILE)) {
      expect([file, content.replace(/@sha256:[0-9a-f]{64}/g, '').match(/\b[0-9a-f]{32,}\b|BEGIN [A-Z ]*PRIVATE KEY/i)?.[0]]).toEqual([file, undefined]);
    }
  });
});

/** A private copy of assets/compose/ that a test may break. */
function templateCopy(): string {
  const dir = path.join(tempDir('templates-'), 'compose');
  fs.cpSync(COMPOSE_DIR, dir, { recursive: true });
  return dir;
}

test('health checks are read program by program, shell checks split on ; && || |', () => {
  expect(healthCheckPrograms(['CMD', 'curl', '-fsS', 'http://x'])).toEqual(['curl']);
  expect(healthCheckPrograms(['CMD-SHELL', 'redis-cli ping | grep -q PONG'])).toEqual(['redis-cli', 'grep']);
  expect(healthCheckPrograms('wget -q -O- x || curl -fsS x; test -f y && true')).toEqual(['wget', 'curl', 'test', 'true']);
});
