import { DeployError, type LogFn } from './deployer-types';

export const REDACTED = '***';

/**
 * Safety net against secret leaks: every line logged and every error message
 * passes through here, and any secret value found is replaced with `***`.
 * Secrets never go on a command line by construction; this catches what remote
 * programs print (a service that echoes its password into its logs).
 */
export class Redactor {
  private values: string[] = [];

  constructor(secrets: Iterable<string> = []) {
    this.add(secrets);
  }

  /** More values to hide (e.g. read from the VPS's `.env` files when the caller knew none). */
  add(secrets: Iterable<string>): void {
    // Longest first, so a secret that contains another one is replaced whole.
    this.values = [...new Set([...this.values, ...[...secrets].filter((v) => v.length > 0)])].sort((a, b) => b.length - a.length);
  }

  apply(text: string): string {
    let out = text;
    for (const value of this.values) out = out.split(value).join(REDACTED);
    return out;
  }

  /** Deep copy of a JSON-like value with every string redacted. */
  deep<T>(value: T): T {
    if (typeof value === 'string') return this.apply(value) as T;
    if (Array.isArray(value)) return value.map((v) => this.deep(v)) as T;
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [this.apply(k), this.deep(v)])) as T;
    }
    return value;
  }

  /** A DeployError whose message, stack and details carry no secret value. */
  error(err: unknown): DeployError {
    if (err instanceof DeployError) {
      const safe = new DeployError(err.code, this.apply(err.message), err.details && this.deep(err.details));
      safe.stack = this.apply(err.stack ?? '');
      return safe;
    }
    // Foreign errors (ssh2, sockets) are rewrapped: their stack or cause might echo data.
    const message = err instanceof Error ? err.message : String(err);
    return new DeployError('SSH_FAILED', this.apply(message));
  }

  /** A log function that redacts; a no-op when no log callback was given. */
  logger(log: LogFn | undefined): LogFn {
    return (line) => log?.(this.apply(line));
  }
}
