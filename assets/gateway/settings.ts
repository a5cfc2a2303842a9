import * as path from 'node:path';

/** The gateway's settings, read once from the environment (docker-compose.yml sets them). */
export interface GatewaySettings {
  readonly port: number;
  readonly redisUrl: string;
  /** Absent only where a test hands the gateway its own ControlClient. */
  readonly controlFunctionName: string | null;
  readonly outputLinkSecret: string;
  /** Base of the signed /outputs links in JobView (no trailing slash). */
  readonly publicBaseUrl: string;
  /** The gateway's own volume (its SSH link key); null where a test runs it without one. */
  readonly dataDir: string | null;
  readonly outputDir: string;
  readonly outputCacheBytes: number;
  readonly outputLinkTtlSeconds: number;
  readonly maxQueue: number;
  readonly holdTimeoutSeconds: number;
  readonly promptsPerInstance: number;
  readonly maxAttempts: number;
  readonly fallbackComfyuiUrl: string | null;
  /** How long one lease keeps a box's idle watcher away (BUSY_UNTIL_TAG); the control function allows at most 900. */
  readonly leaseSeconds: number;
  readonly leaseRenewSeconds: number;
  /** The dispatcher's loop period: held prompts, running ones' /history, timeouts. */
  readonly pollIntervalMs: number;
  /** Oldest fleet status the dispatcher acts on while it has work (each refresh is one control call). */
  readonly statusIntervalMs: number;
  readonly metricsIntervalSeconds: number;
  /** A box whose ComfyUI stays unreachable this long while it holds our prompts counts as lost. */
  readonly unreachableGraceSeconds: number;
  /** Finished jobs' records (and their /history entries) are kept this long. */
  readonly jobRetentionHours: number;
}

type Env = Readonly<Record<string, string | undefined>>;

/** A value as set: unset and empty (compose renders optional settings as "") are the same. */
function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function required(env: Env, name: string, what: string): string {
  const value = raw(env, name);
  if (value === undefined) throw new Error(`${name} must be set: ${what}`);
  return value;
}

function wholeNumber(env: Env, name: string, fallback: number, min: number, max: number): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`${name} is "${value}": allowed is a whole number from ${min} to ${max} (default ${fallback})`);
  }
  return Number(value);
}

function httpUrl(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${name} is "${value}": allowed is an http:// or https:// URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${name} is "${value}": allowed is an http:// or https:// URL`);
  if (url.username || url.password) throw new Error(`${name} must not carry credentials in the URL`);
  return value.replace(/\/+$/, '');
}

export function loadSettings(env: Env): GatewaySettings {
  const port = wholeNumber(env, 'PORT', 9000, 1, 65535);
  const redisUrl = required(env, 'REDIS_URL', 'the Redis URL, e.g. redis://default:PASSWORD@redis:6379/2');
  if (!/^rediss?:\/\//.test(redisUrl)) throw new Error('REDIS_URL must start with redis:// or rediss://');
  // Never echo the secret: only its length is named.
  const secret = required(env, 'OUTPUT_LINK_SECRET', 'the HMAC key of the signed /outputs links (at least 32 characters)');
  if (secret.length < 32) throw new Error(`OUTPUT_LINK_SECRET has ${secret.length} characters: allowed is at least 32`);
  const dataDir = raw(env, 'DATA_DIR');
  const outputDir = raw(env, 'OUTPUT_DIR') ?? (dataDir ? path.join(dataDir, 'outputs') : undefined);
  if (outputDir === undefined) throw new Error('OUTPUT_DIR (or DATA_DIR, then DATA_DIR/outputs) must be set: where finished images are kept');
  const leaseSeconds = wholeNumber(env, 'LEASE_SECONDS', 180, 1, 900);
  const leaseRenewSeconds = wholeNumber(env, 'LEASE_RENEW_SECONDS', 60, 1, 900);
  if (leaseRenewSeconds >= leaseSeconds) {
    throw new Error(`LEASE_RENEW_SECONDS is ${leaseRenewSeconds}: allowed is less than LEASE_SECONDS (${leaseSeconds}), or a lease lapses before it is renewed`);
  }
  return {
    port,
    redisUrl,
    controlFunctionName: raw(env, 'CONTROL_FUNCTION_NAME') ?? null,
    outputLinkSecret: secret,
    publicBaseUrl: httpUrl(env, 'PUBLIC_BASE_URL') ?? `http://gateway:${port}`, // the compose service: in-network clients
    dataDir: dataDir ?? null,
    outputDir,
    outputCacheBytes: wholeNumber(env, 'OUTPUT_CACHE_MB', 2000, 1, 1_000_000) * 1024 * 1024,
    outputLinkTtlSeconds: wholeNumber(env, 'OUTPUT_LINK_TTL_SECONDS', 86_400, 60, 30 * 86_400),
    maxQueue: wholeNumber(env, 'MAX_QUEUE', 100, 1, 10_000),
    holdTimeoutSeconds: wholeNumber(env, 'HOLD_TIMEOUT_SECONDS', 900, 1, 86_400),
    promptsPerInstance: wholeNumber(env, 'PROMPTS_PER_INSTANCE', 4, 1, 1000),
    maxAttempts: wholeNumber(env, 'MAX_ATTEMPTS', 3, 1, 20),
    fallbackComfyuiUrl: httpUrl(env, 'FALLBACK_COMFYUI_URL') ?? null,
    leaseSeconds,
    leaseRenewSeconds,
    pollIntervalMs: wholeNumber(env, 'POLL_INTERVAL_MS', 1000, 10, 60_000),
    statusIntervalMs: wholeNumber(env, 'STATUS_INTERVAL_MS', 2000, 10, 600_000),
    metricsIntervalSeconds: wholeNumber(env, 'METRICS_INTERVAL_SECONDS', 60, 1, 3600),
    unreachableGraceSeconds: wholeNumber(env, 'UNREACHABLE_GRACE_SECONDS', 30, 1, 3600),
    jobRetentionHours: wholeNumber(env, 'JOB_RETENTION_HOURS', 168, 1, 24 * 90),
  };
}
