import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ENVIRONMENT_NAMES } from '../../lib/config/environments';
import { synthEnvironment } from '../../lib/synth';

/**
 * Synthesizes every environment once for the whole run; test files read the
 * cloud assemblies instead of each synthesizing them again (the suite's
 * largest cost on a 2-core machine).
 */
export default function globalSetup(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aiassets-synth-'));
  for (const envName of ENVIRONMENT_NAMES) synthEnvironment(envName, path.join(dir, envName));
  process.env.AIASSETS_SYNTH_DIR = dir;
  // As bin/ops.ts does: no Node-22 notice from every in-process SDK client (workers inherit this).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}
