import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The few ComfyUI calls the dispatcher makes itself (ComfyUI v0.3.64 server.py routes
 * post_prompt, get_history_prompt_id, get_queue, view_image). Proxied client calls go
 * through proxy.ts instead.
 */

/** The box did not answer (refused, reset, timed out) or answered something unusable. */
export class Unreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Unreachable';
  }
}

/** One ComfyUI /history entry (execution.py PromptQueue.task_done). */
export interface HistoryEntry {
  readonly prompt?: unknown;
  readonly outputs?: Record<string, Record<string, unknown>>;
  readonly status?: { readonly status_str?: string; readonly completed?: boolean; readonly messages?: ReadonlyArray<readonly [string, Record<string, unknown>]> } | null;
  readonly meta?: unknown;
}

/** An output file named in a history entry: what GET /view takes. */
export interface OutputRef {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: string;
}

const CALL_TIMEOUT_MS = 10_000;
const VIEW_TIMEOUT_MS = 120_000;

async function call(base: string, path: string, init: RequestInit = {}, timeoutMs = CALL_TIMEOUT_MS): Promise<Response> {
  try {
    return await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    throw new Unreachable(`${init.method ?? 'GET'} ${path} on ${base}: ${cause ?? (error as Error).message}`);
  }
}

async function json(response: Response, what: string): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    throw new Unreachable(`${what} answered HTTP ${response.status} without JSON`);
  }
}

/** POST /prompt: ComfyUI's own status and body (200 {prompt_id, number, node_errors} or 400 {error, node_errors}). */
export async function postPrompt(base: string, body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
  const response = await call(base, '/prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (response.status !== 200 && response.status !== 400) throw new Unreachable(`POST /prompt on ${base} answered HTTP ${response.status}`);
  return { status: response.status, body: await json(response, 'POST /prompt') };
}

/** GET /history/{id}: the entry, or null while ComfyUI has none (queued, running or unknown). */
export async function fetchHistory(base: string, promptId: string): Promise<HistoryEntry | null> {
  const response = await call(base, `/history/${encodeURIComponent(promptId)}`);
  if (response.status !== 200) throw new Unreachable(`GET /history/${promptId} on ${base} answered HTTP ${response.status}`);
  const body = (await json(response, 'GET /history')) as Record<string, HistoryEntry>;
  return body[promptId] ?? null;
}

/** GET /queue as ComfyUI's raw items (number, prompt_id, prompt, extra_data, outputs_to_execute). */
export async function fetchQueue(base: string): Promise<{ running: unknown[][]; pending: unknown[][] }> {
  const response = await call(base, '/queue');
  if (response.status !== 200) throw new Unreachable(`GET /queue on ${base} answered HTTP ${response.status}`);
  const body = (await json(response, 'GET /queue')) as { queue_running?: unknown[][]; queue_pending?: unknown[][] };
  if (!Array.isArray(body.queue_running) || !Array.isArray(body.queue_pending)) throw new Unreachable(`GET /queue on ${base} answered without queue_running/queue_pending`);
  return { running: body.queue_running, pending: body.queue_pending };
}

/** The prompt id of a ComfyUI queue item (index 1 of the tuple). */
export function queueItemId(item: unknown[]): string {
  return String(item[1]);
}

/** GET /view into a file; returns its size. */
export async function downloadView(base: string, ref: OutputRef, file: string): Promise<number> {
  const query = new URLSearchParams({ filename: ref.filename, subfolder: ref.subfolder, type: ref.type });
  const response = await call(base, `/view?${query}`, {}, VIEW_TIMEOUT_MS);
  if (response.status !== 200 || !response.body) throw new Unreachable(`GET /view of ${ref.filename} on ${base} answered HTTP ${response.status}`);
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), fs.createWriteStream(file));
  return fs.statSync(file).size;
}

/** Every file a history entry's outputs name (images, gifs, audio, …: any list of {filename, type}). */
export function outputRefs(entry: HistoryEntry): OutputRef[] {
  const refs: OutputRef[] = [];
  for (const nodeOutput of Object.values(entry.outputs ?? {})) {
    for (const list of Object.values(nodeOutput ?? {})) {
      if (!Array.isArray(list)) continue;
      for (const item of list as Array<Record<string, unknown>>) {
        if (item && typeof item.filename === 'string' && typeof item.type === 'string') {
          refs.push({ filename: item.filename, subfolder: typeof item.subfolder === 'string' ? item.subfolder : '', type: item.type });
        }
      }
    }
  }
  return refs;
}

/** ComfyUI's reason for a failed execution: the execution_error message's text, if any. */
export function executionError(entry: HistoryEntry): string {
  for (const [event, data] of entry.status?.messages ?? []) {
    if (event === 'execution_error') return `ComfyUI: ${String(data.exception_type ?? 'error')}: ${String(data.exception_message ?? '').trim()} (node ${String(data.node_id ?? '?')})`;
    if (event === 'execution_interrupted') return `ComfyUI: interrupted (node ${String(data.node_id ?? '?')})`;
  }
  return 'ComfyUI reported the prompt as failed';
}
