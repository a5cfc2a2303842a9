import * as fs from 'node:fs';
import * as path from 'node:path';
import { readTemplates } from '../synth';
import type { AssemblySet } from './types';

/**
 * Reads `<dir>/<env>/manifest.json` for every environment folder, as `npm run synth` writes them.
 * A folder without any assembly is an error: diffing against nothing would report everything as new.
 */
export function readAssemblies(dir: string): AssemblySet {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new Error(`${dir} is not a folder`);
  const set: AssemblySet = {};
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory() || !fs.existsSync(path.join(dir, entry.name, 'manifest.json'))) continue;
    set[entry.name] = readTemplates(path.join(dir, entry.name));
  }
  if (Object.keys(set).length === 0) {
    throw new Error(`no cloud assembly in ${dir}: expected <dir>/<env>/manifest.json (run \`npm run synth -- ${dir}\`)`);
  }
  return set;
}
