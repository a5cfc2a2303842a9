import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';

/** A real moto server (EC2, S3, IAM, CloudFormation, Cost Explorer, SNS APIs) on a free loopback port. */
export interface MotoServer {
  readonly endpoint: string;
  /** Clears all state between tests. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

/** Environment for AWS SDK clients and CLIs that must talk to moto only, with throwaway credentials. */
export function motoEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilReady(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto exited with code ${child.exitCode}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`moto did not answer on ${endpoint} within ${timeoutMs} ms`);
}

export interface MotoOptions {
  /**
   * For the CDK CLI: moto's CloudFormation finds a TemplateURL's bucket in the path only when the
   * URL says `localhost` (moto/cloudformation/utils.py get_stack_from_s3_url), so the endpoint is
   * named `http://localhost:PORT` (still the 127.0.0.1 listener), and moto also serves the public
   * DLAMI parameters the Gpu stack reads (moto_with_public_dlami.py).
   */
  forCdkDeploy?: boolean;
}

export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://${options.forCdkDeploy ? 'localhost' : '127.0.0.1'}:${port}`;
  const server = options.forCdkDeploy ? [path.join(__dirname, 'moto_with_public_dlami.py')] : ['-m', 'moto.server'];
  const child = spawn('python3', [...server, '-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  try {
    await waitUntilReady(endpoint, child, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    endpoint,
    reset: async () => {
      // A failed reset would carry one test's resources into the next: fail loudly.
      const response = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset on ${endpoint} answered HTTP ${response.status}`);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/**
 * One moto server for the enclosing test file or describe block: started before all tests,
 * reset before each, stopped after all. Returns an accessor (the server exists only once started).
 */
export function useMoto(): () => MotoServer {
  let server: MotoServer | undefined;
  beforeAll(async () => {
    server = await startMoto();
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(async () => {
    await server?.reset();
  });
  return () => {
    if (!server) throw new Error('moto is not running (useMoto() hooks have not run)');
    return server;
  };
}
