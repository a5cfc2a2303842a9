import type { z } from 'zod';
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

/** Looks up one of the app's environments by name (`-c env=<name>`) and validates it. */
export function loadEnvironment(name: string): EnvironmentConfig {
  if (!isEnvironmentName(name)) {
    throw new ConfigError(
      `Unknown environment ${JSON.stringify(name)} (from -c env=${name}); allowed: ${ENVIRONMENT_NAMES.join(', ')}.`,
    );
  }
  return validateEnvironment(name, environments[name]);
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
  const shown = value === undefined ? 'missing' : JSON.stringify(value);
  return `${field} = ${shown}: allowed is ${issue.message}`;
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let current: unknown = raw;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
