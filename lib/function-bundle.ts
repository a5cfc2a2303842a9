import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..');

/** Where each function's code lives: `assets/lambda/<name>/index.ts`. */
export const FUNCTIONS_DIR = path.join(ROOT, 'assets', 'lambda');

/** The runtime of every function; the bundle targets its Node.js version. */
export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** `nodejs24.x` -> `node24`, esbuild's name for the same Node.js major. */
const ESBUILD_TARGET = FUNCTION_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, 'node$1');

const built = new Map<string, string>();

/** The names of all functions (folders of assets/lambda/ with an index.ts). */
export function functionNames(): string[] {
  return fs.readdirSync(FUNCTIONS_DIR).filter((d) => fs.existsSync(path.join(FUNCTIONS_DIR, d, 'index.ts')));
}

/**
 * Bundles `assets/lambda/<name>/index.ts` (and what it imports from lib/) into one
 * `index.js` for Lambda, once per process, and returns its folder (the asset that
 * ships). The AWS SDK v3 comes from the Lambda runtime; ssh2's optional native
 * add-ons are left out (it falls back to pure JavaScript).
 */
export function bundleFunction(name: string): string {
  const cached = built.get(name);
  if (cached) return cached;
  const entry = path.join(FUNCTIONS_DIR, name, 'index.ts');
  if (!fs.existsSync(entry)) throw new Error(`function "${name}" has no ${path.relative(ROOT, entry)}; functions: ${functionNames().join(', ')}`);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `aiassets-fn-${name}-`));
  // The AWS SDK v3 comes from the Lambda runtime.
  bundleNodeProgram(entry, path.join(outdir, 'index.js'), ['@aws-sdk/*']);
  built.set(name, outdir);
  return outdir;
}

/**
 * Bundles a Node.js program (a function or the VPS gateway) into one CommonJS file for the
 * runtime's Node.js major. ssh2's optional native add-ons are left out (it falls back to pure
 * JavaScript); `external` adds what the runtime already provides.
 */
export function bundleNodeProgram(entry: string, outfile: string, external: readonly string[] = []): void {
  buildSync({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    outfile,
    bundle: true,
    platform: 'node',
    target: ESBUILD_TARGET,
    format: 'cjs',
    external: [...external, 'cpu-features', '*.node'],
    legalComments: 'none',
    logLevel: 'error',
  });
}
