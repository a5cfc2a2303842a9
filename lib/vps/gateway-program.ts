import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bundleNodeProgram } from '../function-bundle';

/** The gateway's entry point: the service n8n, Sim and MCP clients reach ComfyUI through. */
export const GATEWAY_ENTRY = path.join(__dirname, '..', '..', 'assets', 'gateway', 'main.ts');

/** Where the bundled gateway sits in a VPS release (compose mounts ./gateway read-only). */
export const GATEWAY_PROGRAM_FILE = 'gateway/gateway.cjs';

let built: string | undefined;

/**
 * The gateway and everything it imports (ioredis, ssh2, ws, the MCP SDK, the Lambda client) as
 * one CommonJS file, built once per process. It ships inside the release bundle, so the release
 * hash covers the gateway's code and deploy, health gate and rollback cover it like the rest.
 */
export function gatewayProgram(): string {
  if (built === undefined) {
    const outfile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'aiassets-gateway-')), 'gateway.cjs');
    bundleNodeProgram(GATEWAY_ENTRY, outfile);
    built = fs.readFileSync(outfile, 'utf8');
  }
  return built;
}
