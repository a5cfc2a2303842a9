import { randomUUID } from 'node:crypto';
import type * as http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { RelayHooks } from './dispatcher';

/** How long a dispatch waits for the client's socket to the box before submitting anyway. */
const OPEN_TIMEOUT_MS = 3000;
/** Events after which the dispatcher looks at the prompt's /history at once instead of at its next pass. */
const FINISH_EVENTS = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

interface Client {
  readonly socket: WebSocket;
  /** One socket per box (or the fallback) this client's prompts were sent to. */
  readonly upstreams: Map<string, WebSocket>;
  /** ComfyUI's feature_flags negotiation (the client's first message), replayed to each box. */
  featureFlags: string | null;
}

/**
 * ComfyUI's /ws for clients of the gateway (server.py websocket_handler, v0.3.64): accepted
 * at once with ComfyUI's first `status` message ({status: {exec_info: {queue_remaining}}, sid});
 * `status` again whenever held plus running prompts change. Before a client's prompt is submitted
 * to a box, the gateway opens that box's /ws with the same clientId and relays every message
 * (text and binary previews) from then on; after a resubmission it does so for the new box.
 * Boxes' `status` messages are rewritten to the gateway's count (held prompts included).
 */
export class WsRelay implements RelayHooks {
  private readonly server = new WebSocketServer({ noServer: true });
  private readonly clients = new Map<string, Client>();
  private remaining = 0;

  constructor(
    private readonly hooks: { connected(clientId: string): void; finished(): void },
    private readonly log: (line: string) => void,
  ) {}

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, sidFromQuery: string | null): void {
    this.server.handleUpgrade(req, socket, head, (ws) => this.accept(ws, sidFromQuery || randomUUID().replace(/-/g, '')));
  }

  async prepare(clientId: string, target: string, base: string): Promise<void> {
    const client = this.clients.get(clientId);
    if (!client) return;
    const existing = client.upstreams.get(target);
    if (existing && existing.readyState === WebSocket.OPEN) return;
    const upstream = new WebSocket(`${base.replace(/^http/, 'ws')}/ws?clientId=${encodeURIComponent(clientId)}`);
    client.upstreams.set(target, upstream);
    upstream.on('message', (data, isBinary) => this.relay(client, data, isBinary));
    upstream.on('close', () => {
      if (client.upstreams.get(target) === upstream) client.upstreams.delete(target);
    });
    upstream.on('error', (error) => this.log(`ws ${clientId} -> ${target}: ${error.message}`));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, OPEN_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      upstream.once('open', () => {
        if (client.featureFlags) upstream.send(client.featureFlags);
        done();
      });
      upstream.once('close', done);
    });
  }

  queueChanged(remaining: number): void {
    this.remaining = remaining;
    for (const [sid, client] of this.clients) this.send(client.socket, { type: 'status', data: { status: { exec_info: { queue_remaining: remaining } }, sid } });
  }

  close(): void {
    for (const client of this.clients.values()) {
      for (const upstream of client.upstreams.values()) upstream.terminate();
      client.socket.terminate();
    }
    this.clients.clear();
    this.server.close();
  }

  private accept(socket: WebSocket, sid: string): void {
    // As ComfyUI: a new socket with the same clientId replaces the old one.
    const previous = this.clients.get(sid);
    if (previous) for (const upstream of previous.upstreams.values()) upstream.terminate();
    const client: Client = { socket, upstreams: new Map(), featureFlags: null };
    this.clients.set(sid, client);
    this.send(socket, { type: 'status', data: { status: { exec_info: { queue_remaining: this.remaining } }, sid } });
    let first = true;
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      if (first && /"feature_flags"/.test(text)) client.featureFlags = text;
      first = false;
      for (const upstream of client.upstreams.values()) if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
    });
    socket.on('close', () => {
      if (this.clients.get(sid) !== client) return;
      this.clients.delete(sid);
      for (const upstream of client.upstreams.values()) upstream.terminate();
    });
    socket.on('error', () => socket.terminate());
    this.hooks.connected(sid);
  }

  private relay(client: Client, data: RawData, isBinary: boolean): void {
    if (client.socket.readyState !== WebSocket.OPEN) return;
    if (isBinary) {
      client.socket.send(data, { binary: true });
      return;
    }
    const text = data.toString();
    let message: { type?: string; data?: { status?: { exec_info?: { queue_remaining?: number } } } };
    try {
      message = JSON.parse(text);
    } catch {
      client.socket.send(text);
      return;
    }
    if (message.type === 'status' && message.data?.status?.exec_info) {
      message.data.status.exec_info.queue_remaining = this.remaining;
      client.socket.send(JSON.stringify(message));
      return;
    }
    if (message.type && FINISH_EVENTS.has(message.type)) this.hooks.finished();
    client.socket.send(text);
  }

  private send(socket: WebSocket, message: unknown): void {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }
}
