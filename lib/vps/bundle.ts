import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { pinnedImage } from '../config/schema';

/**
 * Renders the VPS compose stack ("bundle") for one environment from the
 * templates in assets/compose/. The deployer uploads the files to
 * /opt/<app>/<env>/releases/<hash>/, writes .env beside docker-compose.yml and
 * runs `docker compose up` there. Scripts are started as `sh <file>`, so file
 * modes do not matter.
 */
export interface VpsBundleSettings {
  appName: string;
  envName: string;
  hostnames: { n8n: string; sim: string; mcp?: string };
  letsEncryptEmail: string;
  /** Pinned gateway image; without it (or without hostnames.mcp) the gateway is left out entirely. */
  mcpGatewayImage?: string;
}

export interface VpsBundle {
  /** Relative path → content, keys in sorted order. */
  files: Record<string, string>;
  /**
   * Release id: the first 16 hex characters of the SHA-256 over every file, in
   * sorted path order, each fed as `<path>\0<byte length>\0<content>`.
   */
  hash: string;
}

export const COMPOSE_DIR = path.join(__dirname, '..', '..', 'assets', 'compose');

/** Files copied unchanged into the bundle (templates and provision.sh stay out). */
const STATIC_FILES = [
  '.env.example',
  'certbot/certbot.sh',
  'certbot/deploy-hook.sh',
  'nginx/nginx.conf',
  'nginx/start.sh',
  'postgres/init-databases.sh',
  'redis/redis.conf',
  'redis/start.sh',
];

/** The .env variables the stack needs; each one a generated secret (`openssl rand -hex 32`). */
export const STACK_SECRETS = [
  'POSTGRES_PASSWORD',
  'N8N_DB_PASSWORD',
  'SIM_DB_PASSWORD',
  'REDIS_PASSWORD',
  'N8N_ENCRYPTION_KEY',
  'SIM_BETTER_AUTH_SECRET',
  'SIM_ENCRYPTION_KEY',
  'SIM_INTERNAL_API_SECRET',
  'SIM_API_ENCRYPTION_KEY',
] as const;
export const GATEWAY_SECRETS = ['MCP_GATEWAY_TOKEN'] as const;

/** The secrets the rendered stack of these settings references (the deployer writes them to .env). */
export function requiredSecrets(settings: VpsBundleSettings): string[] {
  return gatewayEnabled(settings) ? [...STACK_SECRETS, ...GATEWAY_SECRETS] : [...STACK_SECRETS];
}

export function renderBundle(settings: VpsBundleSettings): VpsBundle {
  validate(settings);
  const gateway = gatewayEnabled(settings);
  const sites: Array<{ host: string; service: 'n8n' | 'sim' | 'mcp' }> = [
    { host: settings.hostnames.n8n, service: 'n8n' },
    { host: settings.hostnames.sim, service: 'sim' },
  ];
  if (gateway) sites.push({ host: settings.hostnames.mcp as string, service: 'mcp' });
  const hosts = sites.map((s) => s.host);

  const files: Record<string, string> = {};
  for (const file of STATIC_FILES) files[file] = read(file);

  const compose = fill(keepGatewayBlocks(read('docker-compose.yml'), gateway), {
    PROJECT_NAME: `${settings.appName}-${settings.envName}`.toLowerCase(),
    N8N_HOST: settings.hostnames.n8n,
    SIM_HOST: settings.hostnames.sim,
    CERT_DOMAINS: hosts.join(' '),
    LETSENCRYPT_EMAIL: settings.letsEncryptEmail,
    ...(gateway ? { MCP_GATEWAY_IMAGE: settings.mcpGatewayImage as string } : {}),
  });
  const parsed = parseDocument(compose, { merge: true });
  if (parsed.errors.length > 0) throw new Error(`rendered docker-compose.yml is not valid YAML: ${parsed.errors[0].message}`);
  files['docker-compose.yml'] = compose;

  files['nginx/sites/00-default.conf'] = fill(read('nginx/templates/default.conf'), { HOSTS: hosts.join(' ') });
  for (const { host, service } of sites) {
    const locations = read(`nginx/templates/${service}.locations`).replace(/\n+$/, '');
    files[`nginx/sites/${host}.conf`] = fill(read('nginx/templates/site.conf'), { HOST: host, SERVICE: service, LOCATIONS: locations });
  }

  const sorted: Record<string, string> = {};
  for (const file of Object.keys(files).sort()) sorted[file] = files[file];
  return { files: sorted, hash: bundleHash(sorted) };
}

function bundleHash(files: Record<string, string>): string {
  const sha = createHash('sha256');
  for (const [file, content] of Object.entries(files)) {
    sha.update(`${file}\0${Buffer.byteLength(content)}\0`);
    sha.update(content);
  }
  return sha.digest('hex').slice(0, 16);
}

function gatewayEnabled(settings: VpsBundleSettings): boolean {
  return settings.mcpGatewayImage !== undefined && settings.hostnames.mcp !== undefined;
}

function read(file: string): string {
  return fs.readFileSync(path.join(COMPOSE_DIR, file), 'utf8');
}

/** Drops (or just unmarks) the lines between `# @gateway-begin` and `# @gateway-end`. */
function keepGatewayBlocks(text: string, keep: boolean): string {
  const block = /^[ \t]*# @gateway-begin\n([\s\S]*?)^[ \t]*# @gateway-end\n/gm;
  return text.replace(block, (_match, inner: string) => (keep ? inner : ''));
}

/** Replaces every `{{NAME}}`; a placeholder without a value is a template bug. */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    return value;
  });
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DNS_NAME = new RegExp(`^(?=.{1,253}$)(?:${LABEL}\\.)+[a-z]{2,63}$`);
// Stricter than the config's e-mail rule: the address is written into YAML and shell.
const EMAIL = /^[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$/;
const EMAIL_ALLOWED = 'an e-mail address such as ops@example.com (letters, digits and . _ % + - before the @)';
const HOST_ALLOWED = 'a lower-case DNS name with at least one dot, such as n8n.example.com (Let\'s Encrypt issues no certificate for IP addresses)';

/** Throws one Error listing every bad field as `field = value: allowed is ...`. */
function validate(settings: VpsBundleSettings): void {
  const problems: string[] = [];
  const check = (field: string, value: unknown, ok: boolean, allowed: string) => {
    if (!ok) problems.push(`  - ${field} = ${JSON.stringify(value) ?? 'undefined'}: allowed is ${allowed}`);
  };
  const isString = (value: unknown): value is string => typeof value === 'string';
  const { appName, envName, hostnames, letsEncryptEmail, mcpGatewayImage } = settings;

  check('appName', appName, isString(appName) && /^[A-Za-z][A-Za-z0-9-]{0,31}$/.test(appName), 'a letter followed by up to 31 letters, digits or hyphens');
  check('envName', envName, isString(envName) && /^[a-z][a-z0-9-]{0,15}$/.test(envName), 'a lower-case letter followed by up to 15 lower-case letters, digits or hyphens');
  const seen = new Map<string, string>();
  for (const key of ['n8n', 'sim', 'mcp'] as const) {
    const value = hostnames?.[key];
    if (key === 'mcp' && value === undefined) continue;
    const field = `hostnames.${key}`;
    const valid = isString(value) && DNS_NAME.test(value);
    check(field, value, valid, HOST_ALLOWED);
    if (valid && seen.has(value)) check(field, value, false, `a host name different from ${seen.get(value)}`);
    if (valid) seen.set(value, field);
  }
  check('letsEncryptEmail', letsEncryptEmail, isString(letsEncryptEmail) && EMAIL.test(letsEncryptEmail), EMAIL_ALLOWED);
  if (mcpGatewayImage !== undefined) {
    const image = pinnedImage.safeParse(mcpGatewayImage);
    check('mcpGatewayImage', mcpGatewayImage, image.success, image.error?.issues[0]?.message ?? '');
    check('hostnames.mcp', hostnames?.mcp, hostnames?.mcp !== undefined, 'a host name for the gateway whenever mcpGatewayImage is set');
  }
  if (problems.length > 0) throw new Error(`Invalid VPS bundle settings:\n${problems.join('\n')}`);
}
