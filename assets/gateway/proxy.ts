import * as http from 'node:http';
import * as https from 'node:https';
import { GatewayError } from './gateway-api';
import { sendError } from './http-util';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);
/**
 * Not forwarded: the client's bearer token (it is for nginx and the gateway, not ComfyUI) and
 * Origin, which ComfyUI's origin_only_middleware (server.py, v0.3.64) compares with Host and
 * answers 403 when they differ on a loopback host, as they do behind the link.
 */
const DROPPED = new Set([...HOP_BY_HOP, 'authorization', 'origin']);

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 64 }), https: new https.Agent({ keepAlive: true, maxSockets: 64 }) };

function forwardHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [key, value] of Object.entries(headers)) if (value !== undefined && !DROPPED.has(key)) out[key] = value;
  return out;
}

/**
 * Streams one request to ComfyUI at `base` + `pathAndQuery` and its answer back. A box that
 * does not answer gives 502 and `onUnreachable` (the caller forgets the fleet status).
 */
export function proxy(req: http.IncomingMessage, res: http.ServerResponse, base: string, pathAndQuery: string, onUnreachable: () => void): Promise<void> {
  const target = new URL(`${base}${pathAndQuery}`);
  const secure = target.protocol === 'https:';
  return new Promise((resolve) => {
    const upstream = (secure ? https : http).request(
      target,
      { method: req.method, headers: forwardHeaders(req.headers), agent: secure ? agents.https : agents.http },
      (answer) => {
        const headers: http.OutgoingHttpHeaders = {};
        for (const [key, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(key)) headers[key] = value;
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
        answer.on('end', resolve);
        answer.on('error', () => {
          res.destroy();
          resolve();
        });
      },
    );
    upstream.on('error', (error) => {
      onUnreachable();
      sendError(res, new GatewayError(`ComfyUI did not answer ${req.method} ${target.pathname}: ${error.message}`, 502, 'UPSTREAM_UNREACHABLE'));
      resolve();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
      resolve();
    });
    req.pipe(upstream);
  });
}
