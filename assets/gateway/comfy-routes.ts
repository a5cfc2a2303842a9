import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { fetchHistory, Unreachable } from './comfy-client';
import { historyEntry, queueItem } from './comfy-history';
import type { Dispatcher } from './dispatcher';
import type { FleetView } from './fleet-view';
import { type GatewayCore, PromptRefused } from './gateway-core';
import type { PromptRequest } from './gateway-api';
import { readJson, sendError, sendJson } from './http-util';
import { FALLBACK_TARGET, type JobRecord, type JobStore } from './job-store';
import type { OutputStore } from './output-store';
import { proxy } from './proxy';
import type { Upstream } from './upstream';

export interface ComfyRouteDeps {
  readonly core: GatewayCore;
  readonly store: JobStore;
  readonly dispatcher: Dispatcher;
  readonly fleet: FleetView;
  readonly upstream: Upstream;
  readonly outputs: OutputStore;
  readonly fallbackComfyuiUrl: string | null;
}

/** ComfyUI's Content-Type for a file it serves (server.py view_image: active content is downloaded, never shown). */
const CONTENT_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.wav': 'audio/wav',
  '.mp3': 'audio/mpeg',
  '.flac': 'audio/flac',
  '.json': 'application/json',
};

export function contentType(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export function sendFile(res: http.ServerResponse, file: string, downloadName: string): void {
  const size = fs.statSync(file).size;
  res.writeHead(200, { 'content-type': contentType(file), 'content-length': size, 'content-disposition': `filename="${downloadName.replace(/["\\\r\n]/g, '_')}"` });
  fs.createReadStream(file).pipe(res);
}

/** Where a submitted job's ComfyUI is, or null when its box is not in the fleet status. */
async function jobBase(job: JobRecord, deps: ComfyRouteDeps): Promise<string | null> {
  if (job.instanceId === FALLBACK_TARGET) return deps.fallbackComfyuiUrl;
  const instance = deps.fleet.status?.instances.find((i) => i.instanceId === job.instanceId);
  return instance ? deps.upstream.baseUrl(instance) : null;
}

/** Sends a JSON body to every ready box (POST /queue, /history, a global /interrupt); a box that fails is skipped. */
async function toEveryBox(deps: ComfyRouteDeps, route: string, body: unknown): Promise<void> {
  await Promise.all(
    deps.fleet.dispatchable().map(async (instance) => {
      try {
        const base = await deps.upstream.baseUrl(instance);
        await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      } catch {
        // best effort, as for a box that has just left
      }
    }),
  );
}

async function history(res: http.ServerResponse, promptId: string, deps: ComfyRouteDeps): Promise<void> {
  const job = await deps.store.get(promptId);
  const kept = job ? historyEntry(job) : null;
  if (!job || kept) return sendJson(res, 200, kept ? { [promptId]: kept } : {});
  if (job.state === 'submitted' || job.state === 'running') {
    try {
      const base = await jobBase(job, deps);
      const entry = base ? await fetchHistory(base, promptId) : null;
      if (entry) {
        deps.dispatcher.kick(); // it finished: copy its outputs now
        return sendJson(res, 200, { [promptId]: entry });
      }
    } catch (error) {
      if (!(error instanceof Unreachable)) throw error;
    }
  }
  sendJson(res, 200, {}); // held, queued or running: ComfyUI's answer while there is no entry yet
}

async function queue(res: http.ServerResponse, deps: ComfyRouteDeps): Promise<void> {
  const [heldIds, activeIds] = await Promise.all([deps.store.heldIds(), deps.store.activeIds()]);
  const [held, active] = await Promise.all([deps.store.getMany(heldIds, true), deps.store.getMany(activeIds, true)]);
  const byNumber = (a: JobRecord, b: JobRecord) => a.number - b.number;
  sendJson(res, 200, {
    queue_running: active.filter((j) => j.state === 'running').sort(byNumber).map(queueItem),
    queue_pending: [...active.filter((j) => j.state !== 'running'), ...held].sort(byNumber).map(queueItem),
  });
}

async function allHistory(res: http.ServerResponse, search: URLSearchParams, deps: ComfyRouteDeps): Promise<void> {
  const maxItems = Math.min(Math.max(Number(search.get('max_items') ?? 200) || 200, 1), 10_000);
  const jobs = await deps.store.getMany(await deps.store.finishedIds(maxItems), true);
  const out: Record<string, unknown> = {};
  for (const job of jobs) {
    const entry = historyEntry(job);
    if (entry) out[job.promptId] = entry;
  }
  sendJson(res, 200, out);
}

async function interrupt(req: http.IncomingMessage, res: http.ServerResponse, deps: ComfyRouteDeps): Promise<void> {
  const body = (await readJson(req)) as { prompt_id?: unknown };
  const promptId = typeof body.prompt_id === 'string' ? body.prompt_id : null;
  const job = promptId ? await deps.store.get(promptId) : null;
  if (job?.state === 'held') return sendJson(res, 200, {}); // not running anywhere: ComfyUI skips it too
  const base = job && (job.state === 'submitted' || job.state === 'running') ? await jobBase(job, deps) : null;
  if (base) {
    await fetch(`${base}/interrupt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    return sendJson(res, 200, {});
  }
  await deps.core.readyInstance(); // 503 and a wake when none is ready
  await toEveryBox(deps, '/interrupt', body);
  sendJson(res, 200, {});
}

async function postQueue(req: http.IncomingMessage, res: http.ServerResponse, deps: ComfyRouteDeps): Promise<void> {
  const body = (await readJson(req)) as { clear?: unknown; delete?: unknown };
  const ids = body.clear ? await deps.store.heldIds() : Array.isArray(body.delete) ? body.delete.map(String) : [];
  for (const id of ids) await deps.store.removeHeld(id);
  await toEveryBox(deps, '/queue', body);
  deps.dispatcher.kick();
  sendJson(res, 200, {});
}

async function postPrompt(req: http.IncomingMessage, res: http.ServerResponse, deps: ComfyRouteDeps): Promise<void> {
  const body = (await readJson(req)) as Record<string, unknown>;
  if (typeof body !== 'object' || body === null || !('prompt' in body)) {
    // server.py post_prompt's own answer without a prompt.
    const error = { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} };
    return sendJson(res, 400, { error, node_errors: {} });
  }
  try {
    const result = await deps.core.submitPrompt(body as unknown as PromptRequest);
    sendJson(res, 200, { prompt_id: result.promptId, number: result.number, node_errors: {} });
  } catch (error) {
    if (error instanceof PromptRefused) return sendJson(res, 400, error.comfyBody);
    throw error;
  }
}

/**
 * One ComfyUI API call. `apiPath` is the path below /comfyui (ComfyUI also serves every route
 * under /api). Calls on prompts are answered by the gateway; the rest need a live GPU and are
 * proxied to the least-loaded ready box, or answered 503 with Retry-After while one wakes.
 */
export async function handleComfy(req: http.IncomingMessage, res: http.ServerResponse, apiPath: string, url: URL, deps: ComfyRouteDeps): Promise<void> {
  const search = url.searchParams;
  const route = apiPath.startsWith('/api/') ? apiPath.slice(4) : apiPath;
  const method = req.method ?? 'GET';
  try {
    if (route === '/prompt' && method === 'POST') return await postPrompt(req, res, deps);
    if (route === '/prompt' && method === 'GET') {
      const { held, active } = await deps.store.counts();
      return sendJson(res, 200, { exec_info: { queue_remaining: held + active } });
    }
    if (route === '/queue' && method === 'GET') return await queue(res, deps);
    if (route === '/queue' && method === 'POST') return await postQueue(req, res, deps);
    if (route === '/history' && method === 'GET') return await allHistory(res, search, deps);
    if (route === '/history' && method === 'POST') {
      await toEveryBox(deps, '/history', await readJson(req));
      return sendJson(res, 200, {});
    }
    if (route.startsWith('/history/') && method === 'GET') return await history(res, decodeURIComponent(route.slice('/history/'.length)), deps);
    if (route === '/interrupt' && method === 'POST') return await interrupt(req, res, deps);
    if (route === '/view' && method === 'GET' && search.get('filename') && !search.has('preview') && !search.has('channel')) {
      const ref = { filename: search.get('filename') ?? '', subfolder: search.get('subfolder') ?? '', type: search.get('type') ?? 'output' };
      const file = await deps.outputs.viewFile(ref);
      if (file) return sendFile(res, file, path.basename(ref.filename));
    }
    const instance = await deps.core.readyInstance();
    await proxy(req, res, await deps.upstream.baseUrl(instance), `${apiPath}${url.search}`, () => deps.core.fleetChanged());
  } catch (error) {
    sendError(res, error);
  }
}
