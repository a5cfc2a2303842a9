import { formatDifferences, fullDiff, type FormatStream } from '@aws-cdk/cloudformation-diff';
import type { CfnTemplate } from '../synth';

/** Keys whose values are never printed, even though the templates hold no secrets today. */
const SECRET_KEY = /(password|passphrase|secretstring|privatekey|apikey|accesskey|credential|authtoken|^token$)/i;

const ANSI = /\u001b\[[0-9;]*m/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** A copy with every value under a secret-looking key replaced. */
export function redact<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redact(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, SECRET_KEY.test(k.replace(/[^a-z]/gi, '')) ? '(redacted)' : redact(v)]),
  ) as T;
}

/** `cdk diff`'s own rendering of a template change, uncoloured, with secret-looking values redacted. */
export function diffText(oldTemplate: CfnTemplate | undefined, newTemplate: CfnTemplate | undefined): string {
  let text = '';
  // The formatter only calls write(); a plain collector keeps it synchronous.
  const sink = { columns: 120, write: (chunk: string | Uint8Array) => ((text += chunk.toString()), true) } as unknown as FormatStream;
  formatDifferences(sink, fullDiff(redact(oldTemplate ?? {}), redact(newTemplate ?? {})));
  return stripAnsi(text).trimEnd();
}
