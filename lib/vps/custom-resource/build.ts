import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');
const ENTRY = path.join(__dirname, 'handler.ts');
let built: string | undefined;

/**
 * Bundles the custom-resource handler (deployer + ssh2) into one file for
 * Lambda, once per process. The AWS SDK comes from the Lambda runtime; ssh2's
 * optional native add-ons are left out (it falls back to pure JavaScript).
 */
export function buildVpsHandler(): string {
  if (built) return built;
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'aiassets-vps-handler-'));
  buildSync({
    entryPoints: [ENTRY],
    absWorkingDir: ROOT,
    outfile: path.join(outdir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    external: ['@aws-sdk/*', 'cpu-features', '*.node'],
    legalComments: 'none',
    logLevel: 'error',
  });
  built = outdir;
  return outdir;
}
