import type { ControlRequest, GatewayMetrics } from './protocol';

/**
 * Checks what the gateway sent against the protocol (lib/gpu-control/protocol.ts). Only types
 * are checked here; ranges that depend on the fleet (capacity, instance ids) are the actions'.
 */

export type Parsed = { readonly ok: true; readonly request: ControlRequest } | { readonly ok: false; readonly message: string };

const ACTIONS = ['status', 'set-capacity', 'lease', 'register-link-key', 'report', 'list-models', 'list-workflows'] as const;

const METRIC_FIELDS = ['queueDepth', 'running', 'wakes', 'jobsCompleted', 'jobsFailed', 'jobsResubmitted'] as const;

/** Values of one WakeToReadySeconds report (CloudWatch takes at most 150 values per datum). */
export const MAX_WAKE_VALUES = 150;

const shown = (value: unknown): string => {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

class Invalid extends Error {}

function fail(field: string, value: unknown, allowed: string): never {
  throw new Invalid(`${field} is ${shown(value)}: allowed is ${allowed}`);
}

function wholeNumber(body: Record<string, unknown>, field: string): number {
  const value = body[field];
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(field, value, 'a whole number');
  return value;
}

function text(body: Record<string, unknown>, field: string, allowed = 'a string'): string {
  const value = body[field];
  if (typeof value !== 'string') fail(field, value, allowed);
  return value;
}

function metrics(value: unknown): GatewayMetrics {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('metrics', value, 'an object of the gateway counters');
  const m = value as Record<string, unknown>;
  const counters = Object.fromEntries(
    METRIC_FIELDS.map((field) => {
      const n = m[field];
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) fail(`metrics.${field}`, n, 'a number of 0 or more');
      return [field, n];
    }),
  );
  const waits = m.wakeToReadySeconds;
  if (!Array.isArray(waits) || waits.length > MAX_WAKE_VALUES || waits.some((w) => typeof w !== 'number' || !Number.isFinite(w) || w < 0)) {
    fail('metrics.wakeToReadySeconds', waits, `a list of at most ${MAX_WAKE_VALUES} numbers of 0 or more`);
  }
  return { ...(counters as Omit<GatewayMetrics, 'wakeToReadySeconds'>), wakeToReadySeconds: waits as number[] };
}

export function parseRequest(event: unknown): Parsed {
  try {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) fail('the request', event, 'a JSON object with an action');
    const body = event as Record<string, unknown>;
    const action = body.action;
    if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) fail('action', action, ACTIONS.join(', '));
    switch (action as (typeof ACTIONS)[number]) {
      case 'status':
      case 'list-models':
      case 'list-workflows':
        return { ok: true, request: { action: action as 'status' | 'list-models' | 'list-workflows' } };
      case 'set-capacity':
        return { ok: true, request: { action: 'set-capacity', capacity: wholeNumber(body, 'capacity'), reason: text(body, 'reason') } };
      case 'lease': {
        const ids = body.instanceIds;
        if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string')) fail('instanceIds', ids, 'a non-empty list of instance ids');
        return { ok: true, request: { action: 'lease', instanceIds: ids as string[], seconds: wholeNumber(body, 'seconds') } };
      }
      case 'register-link-key':
        return { ok: true, request: { action: 'register-link-key', publicKey: text(body, 'publicKey', 'an OpenSSH public key string') } };
      case 'report':
        return { ok: true, request: { action: 'report', metrics: metrics(body.metrics) } };
    }
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, message: error.message };
    throw error;
  }
}
