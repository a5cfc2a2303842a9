import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { DeployError, type Bundle, type DeployTarget, type Secrets } from './deployer-types';

/** Remote paths of one app/environment. */
export interface Layout {
  envDir: string;
  appDir: string;
  releasesDir: string;
  lockDir: string;
  /** Who deployed what is running: the custom resource's physical id (see `DeployOptions.owner`). */
  ownerFile: string;
  /** Compose project name, stable across releases so named volumes persist. */
  project: string;
}

// Names end up in paths and in the compose project name (lowercase [a-z0-9_-]).
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const RELEASE = /^[0-9a-f]{8,128}$/;
const BASE_DIR = /^\/[A-Za-z0-9._/-]*$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SERVICE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function invalid(message: string): never {
  throw new DeployError('INVALID_INPUT', message);
}

/** Single-quotes a value for a POSIX shell. */
export function sq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function layoutOf(target: DeployTarget): Layout {
  const { appName, envName } = target;
  if (!NAME.test(appName)) invalid(`appName "${appName}" must be letters, digits, - or _ (starting with a letter or digit)`);
  if (!NAME.test(envName)) invalid(`envName "${envName}" must be letters, digits, - or _ (starting with a letter or digit)`);
  const baseDir = target.baseDir ?? '/opt';
  if (!BASE_DIR.test(baseDir) || baseDir.split('/').some((s) => s === '..' || s === '.')) {
    invalid(`baseDir "${baseDir}" must be an absolute path of letters, digits, . _ - and /, without . or .. segments`);
  }
  if (!Number.isInteger(target.keepReleases) || target.keepReleases < 1) invalid(`keepReleases must be a whole number of at least 1 (got ${target.keepReleases})`);
  const appDir = path.posix.join(baseDir, appName);
  const envDir = path.posix.join(appDir, envName);
  return {
    appDir,
    envDir,
    releasesDir: `${envDir}/releases`,
    lockDir: `${envDir}/.deploy-lock`,
    ownerFile: `${envDir}/.owner`,
    project: `${appName}-${envName}`.toLowerCase(),
  };
}

export function releaseDir(layout: Layout, release: string): string {
  return `${layout.releasesDir}/${release}`;
}

const OWNER = /^[A-Za-z0-9:@/._-]{1,256}$/;

export function validateOwner(owner: string): void {
  if (!OWNER.test(owner)) invalid(`owner "${owner}" must be 1 to 256 letters, digits and : @ / . _ -`);
}

export function validateRelease(release: string): void {
  if (!RELEASE.test(release)) invalid(`release id "${release}" must be 8 to 128 lowercase hex characters`);
}

export function validateService(service: string): void {
  if (!SERVICE.test(service)) invalid(`service "${service}" is not a compose service name`);
}

export function validateSeconds(what: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 1 || value > max) invalid(`${what} must be a whole number from 1 to ${max} (got ${value})`);
}

/** Bundle paths must stay inside the release dir; `.env` is reserved for the secrets. */
export function validateBundle(bundle: Bundle): void {
  validateRelease(bundle.hash);
  const names = Object.keys(bundle.files);
  if (names.length === 0) invalid('bundle has no files');
  for (const name of names) {
    const segments = name.split('/');
    if (
      name.startsWith('/') ||
      /[\0\n\r\\]/.test(name) ||
      segments.some((s) => s === '' || s === '.' || s === '..')
    ) {
      invalid(`bundle file "${name}" must be a relative path without empty, . or .. segments`);
    }
    if (name === '.env') invalid('bundle must not contain .env: it is written from the secrets');
    if (typeof bundle.files[name] !== 'string') invalid(`bundle file "${name}" must be a string`);
  }
}

/** Only keys are ever named in these messages, never values. */
export function validateSecrets(env: Secrets): void {
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_KEY.test(key)) invalid(`env key "${key}" must be a shell-style variable name`);
    if (typeof value !== 'string') invalid(`env value of ${key} must be a string`);
    if (/[\0\n\r]/.test(value)) invalid(`env value of ${key} contains a newline or NUL, which .env cannot hold`);
  }
}

/**
 * The `.env` text for docker compose. Single quotes make a value literal (no `$`
 * interpolation); a value holding `'` is double-quoted when that is unambiguous.
 * Keys are sorted so the same env always gives the same file (and hash).
 */
export function renderEnvFile(env: Secrets): string {
  validateSecrets(env);
  const lines = Object.keys(env)
    .sort()
    .map((key) => {
      const value = env[key];
      if (!value.includes("'")) return `${key}='${value}'`;
      if (!/["\\$]/.test(value)) return `${key}="${value}"`;
      return invalid(`env value of ${key} holds both ' and one of " \\ $, which a compose .env file cannot quote safely`);
    });
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** File mode for a bundle file: scripts executable, everything else read-only for others. */
export function bundleFileMode(name: string): number {
  return name.endsWith('.sh') ? 0o755 : 0o644;
}
