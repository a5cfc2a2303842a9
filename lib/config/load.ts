import type { z } from 'zod';
import { crossEnvironmentProblems } from './cross-environment';
import { ENVIRONMENT_NAMES, environments, type EnvironmentName } from './environments';
import { environmentSchema, type EnvironmentSettings } from './schema';

/** A configuration that must not be synthesized. The message names env, field, value and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** A validated environment: its name plus every field with defaults applied and derived values filled in. */
export interface EnvironmentConfig extends EnvironmentSettings {
  readonly envName: string;
  readonly costCenter: string;
  readonly vps: EnvironmentSettings['vps'] & { readonly letsEncryptEmail: string; readonly sshKeySecretName: string };
}

export function isEnvironmentName(name: string): name is EnvironmentName {
  return (ENVIRONMENT_NAMES as string[]).includes(name);
}

/**
 * Looks up one of the app's environments by name and validates it. `source` says where the name
 * came from, as the user wrote it (`-c env=qa`, `--env qa`, `AIASSETS_ENV=qa`), for the error.
 */
export function loadEnvironment(name: string, source = `-c env=${name}`): EnvironmentConfig {
  if (!isEnvironmentName(name)) {
    throw new ConfigError(`Unknown environment ${JSON.stringify(name)} (from ${source}); allowed: ${ENVIRONMENT_NAMES.join(', ')}.`);
  }
  validateAcrossEnvironments(environments);
  return validateEnvironment(name, environments[name]);
}

/** Throws one ConfigError listing every value two environments share but must not (VPS host, host names, VPC range). */
export function validateAcrossEnvironments(all: Readonly<Record<string, unknown>>): void {
  const problems = crossEnvironmentProblems(all);
  if (problems.length > 0) {
    throw new ConfigError(`Invalid configuration across environments:\n${problems.map((l) => `  - ${l}`).join('\n')}`);
  }
}

/** Validates a raw environment object; throws one ConfigError listing every bad field. */
export function validateEnvironment(envName: string, raw: unknown): EnvironmentConfig {
  const result = environmentSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => describeIssue(issue, raw));
    throw new ConfigError(`Invalid configuration for environment "${envName}":\n${lines.map((l) => `  - ${l}`).join('\n')}`);
  }
  const settings = result.data;
  return {
    ...settings,
    envName,
    costCenter: settings.costCenter ?? `${settings.appName}-${envName}`,
    vps: {
      ...settings.vps,
      letsEncryptEmail: settings.vps.letsEncryptEmail ?? settings.alertEmail,
      sshKeySecretName: settings.vps.sshKeySecretName ?? `${settings.appName}/${envName}/vps-ssh-key`,
    },
  };
}

function describeIssue(issue: z.core.$ZodIssue, raw: unknown): string {
  const field = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    return `${field}: unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; allowed: only the fields listed in the README's config table`;
  }
  const value = valueAt(raw, issue.path);
  return `${field} = ${show(value)}: allowed is ${issue.message}`;
}

/** The value as written in the config; JSON would print NaN and Infinity as null. */
function show(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let current: unknown = raw;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
