import type { Redis } from 'ioredis';
import type { JobState, PromptRequest } from './gateway-api';

/**
 * Durable job records in Redis (the compose stack's Redis, append-only file on): a gateway
 * restart loses nothing, the dispatcher resumes from here.
 *   gw:job:<id>   hash, one job (fields below, all strings)
 *   gw:held       sorted set of held prompt ids, by ComfyUI `number` (front prompts negative)
 *   gw:active     set of prompt ids submitted to a box (or the fallback)
 *   gw:finished   sorted set of finished prompt ids by finish time (GET /history, retention)
 *   gw:number     counter behind `number`
 */
const HELD = 'gw:held';
const ACTIVE = 'gw:active';
const FINISHED = 'gw:finished';
const NUMBER = 'gw:number';
const jobKey = (id: string) => `gw:job:${id}`;

/** An output the gateway copied from the box: `file` is its name under OUTPUT_DIR/<promptId>/. */
export interface StoredOutput {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: string;
  readonly file: string;
}

export interface JobRecord {
  readonly promptId: string;
  readonly state: JobState;
  /** The client's request without prompt_id (that is the key); only in full reads (it holds the whole workflow). */
  readonly request?: Omit<PromptRequest, 'prompt_id'>;
  /** The client_id of the request (its WebSocket), or null. */
  readonly clientId: string | null;
  readonly number: number;
  readonly attempts: number;
  /** The instance it was submitted to, FALLBACK_TARGET, or null while held. */
  readonly instanceId: string | null;
  /** Sent to FALLBACK_COMFYUI_URL rather than a GPU of the fleet. */
  readonly useFallback: boolean;
  readonly error: string | null;
  /** ComfyUI's 400 answer ({error, node_errors}) when the box refused the prompt. */
  readonly comfyRefusal: unknown;
  readonly outputs: readonly StoredOutput[];
  /** The box's /history entry, kept once finished (the box may leave right after); only in full reads. */
  readonly history?: unknown;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly heldSince: number;
  /** When the box first failed to answer for this job; null while it answers. */
  readonly unreachableSince: number | null;
}

export const FALLBACK_TARGET = 'fallback';

type Fields = Partial<Omit<JobRecord, 'promptId' | 'createdAt'>>;

/** What the dispatcher's passes read: everything but the request and the history entry, which can be large. */
const LIGHT_FIELDS = ['promptId', 'state', 'number', 'attempts', 'instanceId', 'clientId', 'useFallback', 'error', 'comfyRefusal', 'outputs', 'createdAt', 'updatedAt', 'heldSince', 'unreachableSince'] as const;

function encode(fields: Fields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (key === 'request' || key === 'outputs' || key === 'comfyRefusal' || key === 'history') out[key] = JSON.stringify(value ?? null);
    else if (key === 'useFallback') out[key] = value ? '1' : '0';
    else out[key] = value === null ? '' : String(value);
  }
  return out;
}

function decode(h: Record<string, string>): JobRecord {
  const num = (k: string) => Number(h[k] ?? 0);
  const json = <T>(k: string, fallback: T): T => (h[k] ? (JSON.parse(h[k]) as T) : fallback);
  return {
    promptId: h.promptId,
    state: h.state as JobState,
    request: h.request ? json('request', { prompt: {} }) : undefined,
    clientId: h.clientId || null,
    number: num('number'),
    attempts: num('attempts'),
    instanceId: h.instanceId || null,
    useFallback: h.useFallback === '1',
    error: h.error || null,
    comfyRefusal: json('comfyRefusal', null),
    outputs: json('outputs', []),
    history: h.history ? json('history', null) : undefined,
    createdAt: num('createdAt'),
    updatedAt: num('updatedAt'),
    heldSince: num('heldSince'),
    unreachableSince: h.unreachableSince ? Number(h.unreachableSince) : null,
  };
}

/**
 * Admission in one step, so 50 requests at once can neither pass MAX_QUEUE together nor reuse an id.
 * KEYS: job, held, active, number. ARGV: maxQueue, front (1/0), then field/value pairs.
 * Returns {0, number}, {1} when the id exists, {2} when the queue is full (a front number is negative).
 */
const ADMIT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
if redis.call('ZCARD', KEYS[2]) + redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[1]) then return {2} end
local n = redis.call('INCR', KEYS[4])
if ARGV[2] == '1' then n = -n end
redis.call('HSET', KEYS[1], 'number', n, unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], n, string.sub(KEYS[1], 8))
return {0, n}`;

/** Removes a job only while it is still held (ComfyUI's POST /queue {delete}). KEYS: job, held. */
const REMOVE_HELD = `
if redis.call('ZREM', KEYS[2], string.sub(KEYS[1], 8)) == 1 then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

export type Admission = { readonly number: number } | { readonly refused: 'exists' | 'full' };

export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly retentionSeconds: number,
  ) {}

  async admit(promptId: string, request: Omit<PromptRequest, 'prompt_id'>, front: boolean, maxQueue: number, now = Date.now()): Promise<Admission> {
    const fields = encode({ state: 'held', request, clientId: request.client_id ?? null, attempts: 0, instanceId: null, useFallback: false, error: null, outputs: [], updatedAt: now, heldSince: now });
    const pairs = Object.entries({ promptId, createdAt: String(now), ...fields }).flat();
    const [code, number] = (await this.redis.eval(ADMIT, 4, jobKey(promptId), HELD, ACTIVE, NUMBER, String(maxQueue), front ? '1' : '0', ...pairs)) as number[];
    if (code === 1) return { refused: 'exists' };
    if (code === 2) return { refused: 'full' };
    return { number };
  }

  async get(promptId: string): Promise<JobRecord | null> {
    const h = await this.redis.hgetall(jobKey(promptId));
    return h.promptId ? decode(h) : null;
  }

  /** Many records; `full` adds the request and the history entry (the ComfyUI /queue and /history listings need them). */
  async getMany(ids: readonly string[], full = false): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) {
      if (full) pipeline.hgetall(jobKey(id));
      else pipeline.hmget(jobKey(id), ...LIGHT_FIELDS);
    }
    const results = (await pipeline.exec()) ?? [];
    const hashes = results.map(([, value]) => {
      if (full) return value as Record<string, string>;
      const values = value as Array<string | null>;
      return Object.fromEntries(LIGHT_FIELDS.flatMap((field, i) => (values[i] === null ? [] : [[field, values[i]]])));
    });
    return hashes.filter((h) => h && h.promptId).map(decode);
  }

  /** Held prompt ids in ComfyUI's order (lowest number first). */
  heldIds(): Promise<string[]> {
    return this.redis.zrange(HELD, '0', '-1');
  }

  activeIds(): Promise<string[]> {
    return this.redis.smembers(ACTIVE);
  }

  async counts(): Promise<{ held: number; active: number }> {
    const [held, active] = await Promise.all([this.redis.zcard(HELD), this.redis.scard(ACTIVE)]);
    return { held, active };
  }

  async update(promptId: string, fields: Fields, now = Date.now()): Promise<void> {
    await this.redis.hset(jobKey(promptId), encode({ ...fields, updatedAt: now }));
  }

  async markSubmitted(promptId: string, instanceId: string, attempts: number, now = Date.now()): Promise<void> {
    await this.redis
      .multi()
      .zrem(HELD, promptId)
      .sadd(ACTIVE, promptId)
      .hset(jobKey(promptId), encode({ state: 'submitted', instanceId, attempts, unreachableSince: null, updatedAt: now }))
      .exec();
  }

  /** Back to held (its instance was lost): dispatched again with the same prompt_id. */
  async rehold(job: JobRecord, fields: Fields, now = Date.now()): Promise<void> {
    await this.redis
      .multi()
      .srem(ACTIVE, job.promptId)
      .zadd(HELD, String(job.number), job.promptId)
      .hset(jobKey(job.promptId), encode({ ...fields, state: 'held', instanceId: null, heldSince: now, unreachableSince: null, updatedAt: now }))
      .exec();
  }

  async finish(promptId: string, state: 'completed' | 'failed', fields: Fields, now = Date.now()): Promise<void> {
    await this.redis
      .multi()
      .zrem(HELD, promptId)
      .srem(ACTIVE, promptId)
      .hset(jobKey(promptId), encode({ ...fields, state, updatedAt: now }))
      .expire(jobKey(promptId), this.retentionSeconds)
      .zadd(FINISHED, String(now), promptId)
      .zremrangebyscore(FINISHED, '-inf', now - this.retentionSeconds * 1000)
      .exec();
  }

  async removeHeld(promptId: string): Promise<boolean> {
    return Number(await this.redis.eval(REMOVE_HELD, 2, jobKey(promptId), HELD)) === 1;
  }

  /** The most recently finished prompt ids, newest last (ComfyUI's /history order). */
  async finishedIds(maxItems: number): Promise<string[]> {
    return (await this.redis.zrevrange(FINISHED, '0', String(maxItems - 1))).reverse();
  }
}
