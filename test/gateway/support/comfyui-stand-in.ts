import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/**
 * A ComfyUI server for the gateway's tests, written from ComfyUI v0.3.64 (the version
 * assets/comfyui/Dockerfile pins): server.py PromptServer routes and execution.py
 * PromptExecutor / PromptQueue. What it keeps of them:
 * - POST /prompt (server.py post_prompt): `number` from the body, else a counter (negated for
 *   `front`); prompt_id = str(body.prompt_id) when given, else a UUID; no `prompt` -> 400
 *   {error: {type: "no_prompt", ...}, node_errors: {}}; validation (execution.py validate_prompt):
 *   a node without class_type or of an unknown class -> 400 "invalid_prompt", no output node ->
 *   400 "prompt_no_outputs"; else queued, 200 {prompt_id, number, node_errors: {}}.
 * - GET /queue: {queue_running, queue_pending} of (number, prompt_id, prompt, extra_data,
 *   outputs_to_execute); GET /prompt: {exec_info: {queue_remaining}}; GET /history[/{id}]:
 *   {id: {prompt, outputs, status: {status_str, completed, messages}, meta}} or {}.
 * - GET /view?filename&subfolder&type (server.py view_image): 400 for "/"-rooted or ".." names,
 *   404 when missing, else the file with Content-Disposition filename="...".
 * - GET /object_info, /system_stats (shapes of server.py), POST /interrupt (global or
 *   {prompt_id} of the running one), POST /upload/image (multipart "image" -> {name, subfolder, type}).
 * - /ws?clientId= (server.py websocket_handler): first {type: status, data: {status: {exec_info:
 *   {queue_remaining}}, sid}}; status broadcast on every queue change (queue_updated); to the
 *   prompt's client_id: execution_start, execution_cached, executing {node, display_node,
 *   prompt_id}, progress {value, max, prompt_id, node}, executed {node, display_node, output,
 *   prompt_id}, execution_success, then executing {node: null, prompt_id} (main.py prompt_worker).
 * Execution is simulated: each prompt takes `msPerPrompt`, in `steps` progress steps, and every
 * SaveImage node writes `outputBytes` bytes as ComfyUI_<counter:05>_.png (SaveImage's naming).
 * kill() is the box dying: every connection is destroyed and the port stops listening.
 */

/** Node classes the stand-in knows; `output` marks OUTPUT_NODE classes. */
const NODE_CLASSES: Record<string, { output: boolean }> = {
  CheckpointLoaderSimple: { output: false },
  CLIPTextEncode: { output: false },
  EmptyLatentImage: { output: false },
  KSampler: { output: false },
  VAEDecode: { output: false },
  SaveImage: { output: true },
  PreviewImage: { output: true },
};

export interface StandInOptions {
  readonly msPerPrompt?: number;
  readonly steps?: number;
  readonly outputBytes?: number;
}

type QueueItem = [number, string, Record<string, Record<string, unknown>>, Record<string, unknown>, string[]];

export interface ReceivedPrompt {
  readonly promptId: string;
  readonly clientId: string | null;
  readonly at: number;
  /** What the test's probe said at the moment the prompt arrived (e.g. "the box is tagged leaving"). */
  readonly probe: unknown;
}

export class ComfyUiStandIn {
  readonly received: ReceivedPrompt[] = [];
  /** Evaluated as each POST /prompt arrives; its value is kept with the prompt. */
  probe: () => unknown = () => null;
  private readonly server = http.createServer((req, res) => void this.handle(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Map<string, WebSocket>();
  private readonly connections = new Set<Socket>();
  private readonly queue: QueueItem[] = [];
  private running: QueueItem | null = null;
  private readonly history = new Map<string, Record<string, unknown>>();
  private readonly files = new Map<string, Buffer>();
  private number = 0;
  private counter = 0;
  private interrupted = false;
  private dead = false;
  private readonly msPerPrompt: number;
  private readonly steps: number;
  private readonly outputBytes: number;

  constructor(options: StandInOptions = {}) {
    this.msPerPrompt = options.msPerPrompt ?? 200;
    this.steps = options.steps ?? 4;
    this.outputBytes = options.outputBytes ?? 2048;
    this.server.on('connection', (socket) => {
      this.connections.add(socket);
      socket.on('close', () => this.connections.delete(socket));
    });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://comfyui');
      if (url.pathname !== '/ws') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, url.searchParams.get('clientId') || randomUUID().replace(/-/g, '')));
    });
  }

  async start(port = 0): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get busy(): boolean {
    return this.running !== null || this.queue.length > 0;
  }

  /** A file /view serves (the benchmark's large output). */
  putFile(type: string, subfolder: string, filename: string, body: Buffer): void {
    this.files.set(`${type}/${subfolder}/${filename}`, body);
  }

  /** The box dies: connections reset, nothing listens any more, the running prompt is lost. */
  async kill(): Promise<void> {
    this.dead = true;
    for (const ws of this.sockets.values()) ws.terminate();
    for (const socket of this.connections) socket.destroy();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(ws: WebSocket, sid: string): void {
    this.sockets.set(sid, ws);
    ws.on('close', () => {
      if (this.sockets.get(sid) === ws) this.sockets.delete(sid);
    });
    this.send('status', { status: this.queueInfo(), sid }, sid);
  }

  private queueInfo(): { exec_info: { queue_remaining: number } } {
    return { exec_info: { queue_remaining: this.queue.length + (this.running ? 1 : 0) } };
  }

  private send(type: string, data: unknown, sid: string | null): void {
    const text = JSON.stringify({ type, data });
    const targets = sid === null ? [...this.sockets.values()] : this.sockets.has(sid) ? [this.sockets.get(sid)!] : [];
    for (const ws of targets) if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }

  private queueUpdated(): void {
    this.send('status', { status: this.queueInfo() }, null);
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async body(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://comfyui');
    // server.py add_routes: every route is served with and without the /api prefix.
    const route = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    const key = `${req.method} ${route}`;
    if (key === 'POST /prompt') return this.postPrompt(JSON.parse((await this.body(req)).toString() || '{}'), res);
    if (key === 'GET /prompt') return this.json(res, 200, this.queueInfo());
    if (key === 'GET /queue') return this.json(res, 200, { queue_running: this.running ? [this.running] : [], queue_pending: [...this.queue] });
    if (key === 'GET /history') return this.json(res, 200, Object.fromEntries(this.history));
    if (req.method === 'GET' && route.startsWith('/history/')) {
      const id = decodeURIComponent(route.slice('/history/'.length));
      return this.json(res, 200, this.history.has(id) ? { [id]: this.history.get(id) } : {});
    }
    if (key === 'GET /view') return this.view(url, res);
    if (key === 'GET /object_info') {
      const info = Object.fromEntries(Object.entries(NODE_CLASSES).map(([name, c]) => [name, { input: { required: {} }, output: [], name, display_name: name, category: 'stand-in', output_node: c.output }]));
      return this.json(res, 200, info);
    }
    if (key === 'GET /system_stats') {
      return this.json(res, 200, {
        system: { os: 'posix', ram_total: 16e9, ram_free: 8e9, comfyui_version: '0.3.64', python_version: '3.12', pytorch_version: '2.8.0', embedded_python: false, argv: ['main.py'] },
        devices: [{ name: 'cuda:0 Tesla T4 (stand-in)', type: 'cuda', index: 0, vram_total: 15e9, vram_free: 14e9, torch_vram_total: 0, torch_vram_free: 0 }],
      });
    }
    if (key === 'POST /interrupt') {
      const text = (await this.body(req)).toString();
      const promptId = text ? (JSON.parse(text) as { prompt_id?: string }).prompt_id : undefined;
      if (!promptId || this.running?.[1] === promptId) this.interrupted = true;
      res.writeHead(200).end();
      return;
    }
    if (key === 'POST /upload/image') {
      const body = (await this.body(req)).toString('latin1');
      const name = /name="image"; filename="([^"]+)"/.exec(body)?.[1];
      if (!name) return void res.writeHead(400).end();
      return this.json(res, 200, { name, subfolder: '', type: 'input' });
    }
    res.writeHead(404).end();
  }

  private postPrompt(body: Record<string, unknown>, res: http.ServerResponse): void {
    let number: number;
    if ('number' in body) number = Number(body.number);
    else {
      number = this.number;
      if (body.front) number = -number;
      this.number += 1;
    }
    if (!('prompt' in body)) {
      return this.json(res, 400, { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
    }
    const prompt = body.prompt as Record<string, Record<string, unknown>>;
    const promptId = 'prompt_id' in body ? String(body.prompt_id) : randomUUID();
    const invalid = (message: string, details: string, type = 'invalid_prompt') => this.json(res, 400, { error: { type, message, details, extra_info: {} }, node_errors: {} });
    const outputs: string[] = [];
    for (const [id, node] of Object.entries(prompt)) {
      if (!node || typeof node.class_type !== 'string') return invalid('Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`);
      const known = NODE_CLASSES[node.class_type];
      if (!known) return invalid(`Cannot execute because node ${node.class_type} does not exist.`, `Node ID '#${id}'`);
      if (known.output) outputs.push(id);
    }
    if (outputs.length === 0) return invalid('Prompt has no outputs', '', 'prompt_no_outputs');
    const extraData = { ...((body.extra_data as Record<string, unknown>) ?? {}) };
    if ('client_id' in body) extraData.client_id = body.client_id;
    this.received.push({ promptId, clientId: (extraData.client_id as string) ?? null, at: Date.now(), probe: this.probe() });
    this.queue.push([number, promptId, prompt, extraData, outputs]);
    this.queue.sort((a, b) => a[0] - b[0]);
    this.queueUpdated();
    this.json(res, 200, { prompt_id: promptId, number, node_errors: {} });
    if (!this.running) void this.work();
  }

  private view(url: URL, res: http.ServerResponse): void {
    const filename = url.searchParams.get('filename');
    if (!filename) return void res.writeHead(404).end();
    if (filename.startsWith('/') || filename.includes('..')) return void res.writeHead(400).end();
    const file = this.files.get(`${url.searchParams.get('type') ?? 'output'}/${url.searchParams.get('subfolder') ?? ''}/${filename}`);
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': file.length, 'content-disposition': `filename="${filename}"` });
    res.end(file);
  }

  private async work(): Promise<void> {
    while (!this.dead && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.running = item;
      this.interrupted = false;
      this.queueUpdated();
      await this.execute(item);
      this.running = null;
      this.queueUpdated();
    }
  }

  private async execute([number, promptId, prompt, extraData, outputs]: QueueItem): Promise<void> {
    const sid = (extraData.client_id as string | undefined) ?? null;
    const messages: Array<[string, Record<string, unknown>]> = [];
    // PromptExecutor.add_message: kept for the history entry, sent to the prompt's client only.
    const message = (type: string, data: Record<string, unknown>) => {
      const stamped = { ...data, timestamp: Date.now() };
      messages.push([type, stamped]);
      if (sid) this.send(type, stamped, sid);
    };
    message('execution_start', { prompt_id: promptId });
    message('execution_cached', { nodes: [], prompt_id: promptId });
    const sampler = Object.keys(prompt).find((id) => prompt[id].class_type === 'KSampler') ?? Object.keys(prompt)[0];
    if (sid) this.send('executing', { node: sampler, display_node: sampler, prompt_id: promptId }, sid);
    for (let step = 1; step <= this.steps; step++) {
      await new Promise((r) => setTimeout(r, this.msPerPrompt / this.steps));
      if (this.dead) return; // killed mid-job: nothing is recorded
      if (this.interrupted) {
        message('execution_interrupted', { prompt_id: promptId, node_id: sampler, node_type: prompt[sampler].class_type, executed: [] });
        return this.finish(number, promptId, prompt, extraData, outputs, {}, 'error', messages, sid);
      }
      if (sid) this.send('progress', { value: step, max: this.steps, prompt_id: promptId, node: sampler }, sid);
    }
    const uiOutputs: Record<string, unknown> = {};
    for (const id of outputs) {
      this.counter += 1;
      const filename = `ComfyUI_${String(this.counter).padStart(5, '0')}_.png`;
      this.files.set(`output//${filename}`, Buffer.alloc(this.outputBytes, this.counter % 256));
      uiOutputs[id] = { images: [{ filename, subfolder: '', type: 'output' }] };
      if (sid) this.send('executed', { node: id, display_node: id, output: uiOutputs[id], prompt_id: promptId }, sid);
    }
    message('execution_success', { prompt_id: promptId });
    this.finish(number, promptId, prompt, extraData, outputs, uiOutputs, 'success', messages, sid);
  }

  private finish(
    number: number,
    promptId: string,
    prompt: QueueItem[2],
    extraData: Record<string, unknown>,
    outputs: string[],
    uiOutputs: Record<string, unknown>,
    status: 'success' | 'error',
    messages: Array<[string, Record<string, unknown>]>,
    sid: string | null,
  ): void {
    const meta = Object.fromEntries(Object.keys(uiOutputs).map((id) => [id, { node_id: id, display_node: id, parent_node: null, real_node_id: id }]));
    this.history.set(promptId, {
      prompt: [number, promptId, prompt, extraData, outputs],
      outputs: uiOutputs,
      status: { status_str: status, completed: status === 'success', messages },
      meta,
    });
    if (sid) this.send('executing', { node: null, prompt_id: promptId }, sid);
  }
}
