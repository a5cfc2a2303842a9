import * as http from 'node:http';
import type { Redis } from 'ioredis';
import { handleComfy, sendFile, type ComfyRouteDeps } from './comfy-routes';
import { GatewayError } from './gateway-api';
import { sendError, sendJson } from './http-util';
import { checkOutputLink } from './output-links';
import type { WsRelay } from './ws-relay';

/** Another front end mounted on the gateway's port (the MCP endpoint at /mcp). */
export interface MountedRoute {
  /** Path prefix, e.g. `/mcp`; matches the path itself and everything below it. */
  readonly prefix: string;
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> | void;
}

export interface ServerDeps extends ComfyRouteDeps {
  readonly redis: Redis;
  readonly relay: WsRelay;
  readonly outputLinkSecret: string;
  readonly mounts: readonly MountedRoute[];
}

/** ComfyUI's API sits under /comfyui/ and, for in-network clients, at the root paths ComfyUI itself uses. */
function comfyPath(pathname: string): string {
  if (pathname === '/comfyui') return '/';
  return pathname.startsWith('/comfyui/') ? pathname.slice('/comfyui'.length) : pathname;
}

const WS_PATHS = new Set(['/ws', '/api/ws']);

async function health(res: http.ServerResponse, deps: ServerDeps): Promise<void> {
  try {
    await deps.redis.ping();
  } catch (error) {
    return sendJson(res, 503, { ok: false, error: `Redis does not answer: ${(error as Error).message}` });
  }
  const { held, active } = await deps.store.counts();
  const status = deps.fleet.status;
  sendJson(res, 200, {
    ok: true,
    queueDepth: held,
    running: active,
    readyInstances: deps.fleet.dispatchable().map((i) => i.instanceId),
    targetCapacity: status?.targetCapacity ?? null,
    fleetStatusAgeSeconds: status ? Math.round(deps.fleet.ageMs() / 1000) : null,
  });
}

/** GET /outputs/<promptId>/<file>?exp=&sig=: a copied output behind a signed, expiring link. */
function outputs(res: http.ServerResponse, url: URL, deps: ServerDeps): void {
  const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
  if (parts.length !== 2) throw new GatewayError('an output link is /outputs/<prompt id>/<file>?exp=&sig=', 404, 'NOT_FOUND');
  const [promptId, file] = parts;
  const check = checkOutputLink(deps.outputLinkSecret, promptId, file, url.searchParams.get('exp'), url.searchParams.get('sig'), Math.floor(Date.now() / 1000));
  if (check === 'bad-signature') throw new GatewayError('the link is not signed by this gateway', 403, 'BAD_SIGNATURE');
  if (check === 'expired') throw new GatewayError('the link has expired: get a new one from get_job', 410, 'LINK_EXPIRED');
  const found = deps.outputs.file(promptId, file);
  if (!found) throw new GatewayError(`output ${file} of ${promptId} is no longer kept (the cache is bounded by OUTPUT_CACHE_MB)`, 404, 'OUTPUT_GONE');
  sendFile(res, found, file);
}

export function createGatewayServer(deps: ServerDeps): http.Server {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const mount = deps.mounts.find((m) => url.pathname === m.prefix || url.pathname.startsWith(`${m.prefix}/`));
    if (mount) {
      Promise.resolve(mount.handle(req, res)).catch((error) => sendError(res, error));
      return;
    }
    if (url.pathname === '/health') {
      health(res, deps).catch((error) => sendError(res, error));
      return;
    }
    if (url.pathname.startsWith('/outputs/')) {
      try {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new GatewayError('outputs are read with GET', 405, 'METHOD_NOT_ALLOWED');
        outputs(res, url, deps);
      } catch (error) {
        sendError(res, error);
      }
      return;
    }
    void handleComfy(req, res, comfyPath(url.pathname), url, deps);
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (!WS_PATHS.has(comfyPath(url.pathname))) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    deps.relay.handleUpgrade(req, socket, head, url.searchParams.get('clientId'));
  });
  return server;
}
