/** A ComfyUI-API client as n8n or a script would write it: POST /prompt, then poll GET /history/{id}. */

/** A text-to-image workflow in ComfyUI's API format (node id -> {class_type, inputs}). */
export function workflow(seed = 1): Record<string, unknown> {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'sd_xl_base_1.0.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 1024, height: 1024, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse at dusk', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '3': { class_type: 'KSampler', inputs: { seed, steps: 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
  };
}

export interface Answer<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export async function request<T = unknown>(url: string, init: RequestInit = {}): Promise<Answer<T>> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  return { status: response.status, headers: response.headers, body: body as T };
}

export function postPrompt(base: string, body: Record<string, unknown>): Promise<Answer<{ prompt_id?: string; number?: number; node_errors?: unknown; error?: { type: string; message: string } }>> {
  return request(`${base}/prompt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

/** Polls until check() answers a value (not undefined), failing with `what` after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface HistoryEntry {
  readonly prompt: unknown[];
  readonly outputs: Record<string, { images?: Array<{ filename: string; subfolder: string; type: string }> }>;
  readonly status: { status_str: string; completed: boolean; messages: Array<[string, Record<string, unknown>]> };
}

/** Polls GET /history/{id} until ComfyUI has an entry for it. */
export function historyOf(base: string, promptId: string, timeoutMs = 60_000): Promise<HistoryEntry> {
  return waitFor(
    `a /history entry for ${promptId}`,
    async () => {
      const answer = await request<Record<string, HistoryEntry>>(`${base}/history/${promptId}`);
      return answer.status === 200 ? answer.body[promptId] : undefined;
    },
    timeoutMs,
    150,
  );
}
