import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { awsRegion, email, httpsUrl, publicHostName } from '../config/rules';
import { SITE_KEYS, siteIssues } from '../config/sites';
import { GATEWAY_PROGRAM_FILE, gatewayProgram } from './gateway-program';

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
  /** Without `gateway` the gateway serves only the compose network (no public site, no token). */
  hostnames: { n8n: string; sim: string; gateway?: string };
  letsEncryptEmail: string;
  gateway: GatewayBundleSettings;
}

/** What the gateway service is told through its environment (lib/config/schema.ts vps.gateway). */
export interface GatewayBundleSettings {
  /** The GPU control function, the only AWS call the gateway's credential allows. */
  controlFunctionName: string;
  region: string;
  maxQueue: number;
  holdTimeoutSeconds: number;
  promptsPerInstance: number;
  maxAttempts: number;
  outputCacheMb: number;
  fallbackComfyuiUrl?: string;
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
  'postgres/ensure-databases.sh',
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
  'SIM_CRON_SECRET',
  'GATEWAY_OUTPUT_LINK_SECRET',
] as const;
/** The bearer token of the gateway's public site (nginx checks it). */
export const GATEWAY_SECRETS = ['GATEWAY_TOKEN'] as const;

/**
 * The gateway's AWS access key, from the Gpu stack's credential secret (an IAM user that may only
 * invoke the control function), not derived from the seed.
 */
export const GATEWAY_CREDENTIAL_VARIABLES = ['GATEWAY_AWS_ACCESS_KEY_ID', 'GATEWAY_AWS_SECRET_ACCESS_KEY'] as const;

/** The seed-derived secrets the rendered stack of these settings references (the deployer writes them to .env). */
export function requiredSecrets(settings: VpsBundleSettings): string[] {
  return publicGateway(settings) ? [...STACK_SECRETS, ...GATEWAY_SECRETS] : [...STACK_SECRETS];
}

/** Every .env variable the rendered stack references: the derived secrets and the gateway's credential. */
export function envVariables(settings: VpsBundleSettings): string[] {
  return [...requiredSecrets(settings), ...GATEWAY_CREDENTIAL_VARIABLES];
}

/** Where the templates are read from; tests point it at a copy. */
export interface RenderOptions {
  templateDir?: string;
}

export function renderBundle(settings: VpsBundleSettings, options: RenderOptions = {}): VpsBundle {
  validate(settings);
  const read = (file: string) => readTemplate(options.templateDir ?? COMPOSE_DIR, file);
  const gateway = publicGateway(settings);
  const sites = SITE_KEYS.flatMap((service) => {
    const host = settings.hostnames[service];
    return host === undefined ? [] : [{ host, service }];
  });
  const hosts = sites.map((s) => s.host);
  const g = settings.gateway;

  const files: Record<string, string> = {};
  for (const file of STATIC_FILES) files[file] = read(file);

  const compose = fill(keepGatewayBlocks(read('docker-compose.yml'), gateway), {
    PROJECT_NAME: `${settings.appName}-${settings.envName}`.toLowerCase(),
    N8N_HOST: settings.hostnames.n8n,
    SIM_HOST: settings.hostnames.sim,
    CERT_DOMAINS: hosts.join(' '),
    LETSENCRYPT_EMAIL: settings.letsEncryptEmail,
    AWS_REGION: g.region,
    CONTROL_FUNCTION_NAME: g.controlFunctionName,
    // Links in job results: public when the gateway has a site, else for clients on the compose network.
    GATEWAY_PUBLIC_URL: gateway ? `https://${settings.hostnames.gateway}` : 'http://gateway:9000',
    GATEWAY_MAX_QUEUE: String(g.maxQueue),
    GATEWAY_HOLD_TIMEOUT_SECONDS: String(g.holdTimeoutSeconds),
    GATEWAY_PROMPTS_PER_INSTANCE: String(g.promptsPerInstance),
    GATEWAY_MAX_ATTEMPTS: String(g.maxAttempts),
    GATEWAY_OUTPUT_CACHE_MB: String(g.outputCacheMb),
    GATEWAY_FALLBACK_URL: g.fallbackComfyuiUrl ?? '',
  });
  const parsed = parseDocument(compose, { merge: true });
  if (parsed.errors.length > 0) throw new Error(`rendered docker-compose.yml is not valid YAML: ${parsed.errors[0].message}`);
  files['docker-compose.yml'] = compose;

  files['nginx/sites/00-default.conf'] = fill(read('nginx/templates/default.conf'), { HOSTS: hosts.join(' ') });
  for (const { host, service } of sites) {
    const locations = read(`nginx/templates/${service}.locations`).replace(/\n+$/, '');
    files[`nginx/sites/${host}.conf`] = fill(read('nginx/templates/site.conf'), { HOST: host, SERVICE: service, LOCATIONS: locations });
  }

  // Only the templates can hold placeholders; the gateway program is code, never filled.
  refuseLeftoverPlaceholders(files);
  files[GATEWAY_PROGRAM_FILE] = gatewayProgram();
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

/** The gateway always runs; it has a public site (and a bearer token) only with a host name. */
function publicGateway(settings: VpsBundleSettings): boolean {
  return settings.hostnames.gateway !== undefined;
}

/**
 * Reads a template as a regular file whose every path component below (and
 * including) the template folder is no symbolic link: a link would carry a
 * file from outside the repository into the uploaded release.
 */
function readTemplate(dir: string, file: string): string {
  let current = dir;
  for (const part of ['', ...file.split('/')]) {
    current = part === '' ? current : path.join(current, part);
    const stat = fs.lstatSync(current);
    if (stat.isSymbolicLink()) {
      throw new Error(
        `${current} is a symbolic link (to ${fs.readlinkSync(current)}): the VPS bundle takes only regular files from its template folder, ` +
          'so nothing from outside the repository enters a release; replace the link with the file itself',
      );
    }
    const last = current === path.join(dir, file);
    if (last && !stat.isFile()) throw new Error(`${current} is not a regular file: the VPS bundle takes only regular files`);
  }
  return fs.readFileSync(path.join(dir, file), 'utf8');
}

/** A `{{...}}` left in any file is a template bug that would ship as a literal. */
function refuseLeftoverPlaceholders(files: Record<string, string>): void {
  const left = Object.entries(files).flatMap(([file, content]) => [...content.matchAll(/\{\{[^{}\n]*\}\}/g)].map((m) => `${file}: ${m[0]}`));
  if (left.length > 0) throw new Error(`the rendered VPS bundle still holds template placeholders:\n  - ${left.join('\n  - ')}`);
}

/** Drops (or just unmarks) the lines between `# @gateway-begin` and `# @gateway-end`. */
function keepGatewayBlocks(text: string, keep: boolean): string {
  const block = /^[ \t]*# @gateway-begin\n([\s\S]*?)^[ \t]*# @gateway-end\n/gm;
  return text.replace(block, (_match, inner: string) => (keep ? inner : ''));
}

/** Replaces every `{{NAME}}`; a placeholder without a value is a template bug. */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z][A-Z0-9_]*)\}\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`template placeholder {{${name}}} has no value`);
    return value;
  });
}

/** Throws one Error listing every bad field as `field = value: allowed is ...`. */
function validate(settings: VpsBundleSettings): void {
  const problems: string[] = [];
  const check = (field: string, value: unknown, ok: boolean, allowed: string) => {
    if (!ok) problems.push(`  - ${field} = ${JSON.stringify(value) ?? 'undefined'}: allowed is ${allowed}`);
  };
  const isString = (value: unknown): value is string => typeof value === 'string';
  // The config's own field rules, so a bundle rendered outside synth (ops vps) is held to the same text.
  const checkRule = (field: string, value: unknown, rule: z.ZodType) => {
    const result = rule.safeParse(value);
    check(field, value, result.success, result.error?.issues[0]?.message ?? '');
  };
  const { appName, envName, hostnames, letsEncryptEmail, gateway } = settings;

  check('appName', appName, isString(appName) && /^[A-Za-z][A-Za-z0-9-]{0,31}$/.test(appName), 'a letter followed by up to 31 letters, digits or hyphens');
  check('envName', envName, isString(envName) && /^[a-z][a-z0-9-]{0,15}$/.test(envName), 'a lower-case letter followed by up to 15 lower-case letters, digits or hyphens');
  for (const key of SITE_KEYS) {
    const value = hostnames?.[key];
    if (key === 'gateway' && value === undefined) continue;
    checkRule(`hostnames.${key}`, value, publicHostName);
  }
  checkRule('letsEncryptEmail', letsEncryptEmail, email);
  checkGateway(gateway, check, checkRule);
  for (const issue of siteIssues(settings)) check(issue.path.join('.'), issue.input, false, issue.message);
  if (problems.length > 0) throw new Error(`Invalid VPS bundle settings:\n${problems.join('\n')}`);
}

type Check = (field: string, value: unknown, ok: boolean, allowed: string) => void;
type CheckRule = (field: string, value: unknown, rule: z.ZodType) => void;

/** The gateway's settings are written into the compose file: only the config's own ranges pass. */
function checkGateway(gateway: GatewayBundleSettings | undefined, check: Check, checkRule: CheckRule): void {
  if (gateway === undefined) {
    check('gateway', gateway, false, 'the gateway settings (lib/vps/bundle-settings.ts)');
    return;
  }
  check(
    'gateway.controlFunctionName',
    gateway.controlFunctionName,
    typeof gateway.controlFunctionName === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(gateway.controlFunctionName),
    'a Lambda function name (1 to 64 letters, digits, - and _)',
  );
  checkRule('gateway.region', gateway.region, awsRegion);
  const ranges: Array<[keyof GatewayBundleSettings, number, number]> = [
    ['maxQueue', 1, 1000],
    ['holdTimeoutSeconds', 60, 3600],
    ['promptsPerInstance', 1, 50],
    ['maxAttempts', 1, 5],
    ['outputCacheMb', 100, 20000],
  ];
  for (const [key, min, max] of ranges) {
    const value = gateway[key];
    check(`gateway.${key}`, value, Number.isInteger(value) && (value as number) >= min && (value as number) <= max, `a whole number from ${min} to ${max}`);
  }
  if (gateway.fallbackComfyuiUrl !== undefined) checkRule('gateway.fallbackComfyuiUrl', gateway.fallbackComfyuiUrl, httpsUrl);
}
