import type * as http from 'node:http';
import { GatewayError } from './gateway-api';

/** ComfyUI's /prompt JSON is small; this bounds what one request may make the gateway hold in Redis. */
export const MAX_JSON_BYTES = 5 * 1024 * 1024;

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** An error in the shape ComfyUI answers with ({error: {type, message, details, extra_info}, node_errors}). */
export function sendError(res: http.ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const known = error instanceof GatewayError ? error : new GatewayError(`internal error: ${(error as Error).message}`, 500, 'INTERNAL');
  const headers: Record<string, string> = known.retryAfterSeconds !== undefined ? { 'retry-after': String(known.retryAfterSeconds) } : {};
  sendJson(res, known.httpStatus, { error: { type: known.code, message: known.message, details: '', extra_info: {} }, node_errors: {} }, headers);
}

export async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) throw new GatewayError(`the body is over ${MAX_JSON_BYTES} bytes`, 413, 'BODY_TOO_LARGE');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayError('the body is not valid JSON', 400, 'INVALID_JSON');
  }
}
