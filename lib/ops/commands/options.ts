import { InvalidArgumentError, Option, type Command } from 'commander';
import { DEFAULT_ENV_VARIABLE } from '../../default-environment';
import { ENVIRONMENT_NAMES } from '../../config/environments';
import { loadEnvironment, type EnvironmentConfig } from '../../config/load';
import { toOpsError } from '../errors';

/** Adds the required `--env <name>` (or $AIASSETS_ENV); every ops command acts on exactly one environment. */
export function withEnvOption(command: Command, description = 'environment to act on'): Command {
  return command.addOption(envOption(description).makeOptionMandatory());
}

/** `--env <name>`, defaulting to $AIASSETS_ENV like `-c env=` does for cdk. */
export function envOption(description: string): Option {
  return new Option('--env <name>', `${description} (${ENVIRONMENT_NAMES.join(', ')})`).env(DEFAULT_ENV_VARIABLE);
}

/** Loads and validates the environment; a ConfigError's message is shown as is (exit 2). */
export function loadEnvOption(name: string): EnvironmentConfig {
  // Named in errors the way the user gave it: commander takes $AIASSETS_ENV when --env is absent.
  const source = process.env[DEFAULT_ENV_VARIABLE] === name ? `${DEFAULT_ENV_VARIABLE}=${name}` : `--env ${name}`;
  try {
    return loadEnvironment(name, source);
  } catch (error) {
    throw toOpsError(error);
  }
}

export function parseCount(raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 10) throw new InvalidArgumentError('allowed is a whole number from 1 to 10.');
  return value;
}

/** Minutes, fractions allowed (0.5 = 30 s). */
export function parseMinutes(raw: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || value > 240) throw new InvalidArgumentError('allowed is a number of minutes above 0 and at most 240.');
  return value;
}

export function parseHttpUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError('allowed is an http(s) URL such as http://localhost:8188.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('allowed is an http(s) URL such as http://localhost:8188.');
  return raw.replace(/\/+$/, '');
}
