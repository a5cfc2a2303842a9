import * as fs from 'node:fs';

export default function globalTeardown(): void {
  const dir = process.env.AIASSETS_SYNTH_DIR;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}
