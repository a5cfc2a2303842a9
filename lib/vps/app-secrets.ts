import { createHmac } from 'node:crypto';

/**
 * The VPS stack's secrets (database passwords, encryption keys) all derive
 * from one random seed kept in Secrets Manager: HMAC-SHA256(seed, name) in hex
 * is 64 characters of [0-9a-f], which every service accepts (Sim wants exactly
 * 64 hex characters for its API key). One secret instead of ten keeps the
 * Secrets Manager bill at $0.40 a month, and the values never exist in a
 * template, a snapshot or a command line.
 */
export function deriveSecrets(seed: string, names: readonly string[]): Record<string, string> {
  if (seed.length < 32) throw new Error('the secret seed must be at least 32 characters');
  return Object.fromEntries(names.map((name) => [name, createHmac('sha256', seed).update(name).digest('hex')]));
}

/**
 * The seed from the app secret, a JSON object like {"seed": "..."}. Errors name the secret only:
 * a parse error would quote its content.
 */
export function appSecretSeed(secret: string, arn: string): string {
  let parsed: { seed?: unknown } | null;
  try {
    parsed = JSON.parse(secret) as { seed?: unknown } | null;
  } catch {
    throw new Error(`the app secret ${arn} is not a JSON object like {"seed": "..."}`);
  }
  if (typeof parsed?.seed !== 'string' || parsed.seed.length < 32) throw new Error(`the app secret ${arn} has no "seed" field of at least 32 characters`);
  return parsed.seed;
}
