import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpServer, type McpDeps } from './mcp-tools';

export type { McpDeps } from './mcp-tools';

/**
 * The gateway's MCP endpoint: streamable HTTP (MCP spec 2025-11-25) on `/mcp`, built on the official SDK's
 * StreamableHTTPServerTransport in its stateless mode, as the SDK's own stateless example does
 * (src/examples/server/simpleStatelessStreamableHttp.ts): a fresh McpServer and transport per POST, no
 * session ids. Nothing is lost on a gateway restart and there is nothing to expire, because every
 * tool's state lives in the gateway core (jobs in Redis) and not in an MCP session.
 * So GET (the optional server-to-client stream) and DELETE (ending a session) answer 405, as the
 * transport spec allows and the SDK's example does; the client SDK treats a 405 on GET as "no stream".
 * Tool calls stream their answer (and progress) as SSE on the POST itself.
 * nginx checks the bearer token before a request gets here.
 */

export const MCP_PATH = '/mcp';

/** Tool calls carry a few scalars; 1 MiB is far above any honest request and bounds what one can make the gateway buffer. */
export const MCP_MAX_BODY_BYTES = 1024 * 1024;

function jsonRpcError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers }).end(body);
}

/**
 * Serves one HTTP request for the MCP endpoint. The gateway's HTTP server calls it for every request
 * whose path is /mcp, with the request body not yet read (the transport reads and bounds it).
 */
export async function handleMcpRequest(req: IncomingMessage, res: ServerResponse, deps: McpDeps): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://gateway.invalid').pathname;
  if (path !== MCP_PATH) return jsonRpcError(res, 404, `Not found: ${path}; the MCP endpoint is ${MCP_PATH}`);
  if (req.method !== 'POST') {
    return jsonRpcError(res, 405, `Method not allowed: ${req.method ?? '(none)'}; this MCP endpoint is stateless and takes POST only`, { Allow: 'POST' });
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MCP_MAX_BODY_BYTES) {
    // Refused before a server is built; `Connection: close` so the unread body does not linger on a kept-alive socket.
    return jsonRpcError(res, 413, `Request body of ${declared} bytes is over the limit of ${MCP_MAX_BODY_BYTES} bytes`, { Connection: 'close' });
  }

  const server = createMcpServer(deps);
  // The transport also enforces the limit on a body sent without Content-Length (chunked).
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, maxRequestBodySize: MCP_MAX_BODY_BYTES });
  res.on('close', () => {
    // Aborts a tool still waiting on a job when the client hangs up.
    void transport.close();
    void server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res);
  } catch (error) {
    if (!res.headersSent) jsonRpcError(res, 500, `Internal error: ${error instanceof Error ? error.message : String(error)}`);
    else res.destroy();
  }
}
