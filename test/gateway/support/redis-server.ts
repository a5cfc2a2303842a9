import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../support/moto';
import { requireTools, TOOLS } from '../../vps/support-compose/real-tools';

export interface RedisServer {
  /** redis://default:<password>@127.0.0.1:<port>/2 (database 2, as the gateway's compose settings use). */
  readonly url: string;
  stop(): Promise<void>;
}

/** One answer to PING over RESP, or an error. */
function ping(port: number, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    let answer = '';
    socket.on('connect', () => socket.write(`AUTH ${password}\r\nPING\r\n`));
    socket.on('data', (d) => {
      answer += d.toString();
      if (answer.includes('+PONG')) done(true);
    });
    socket.on('error', () => done(false));
  });
}

/** Debian's real redis-server on a free loopback port, with a password and no persistence to disk. */
export async function startRedis(): Promise<RedisServer> {
  requireTools('redisServer');
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-redis-'));
  const password = `test-${port}-password`;
  const child: ChildProcess = spawn(TOOLS.redisServer, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--requirepass', password], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 20_000;
  while (!(await ping(port, password))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not answer PING on ${port} within 20 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://default:${password}@127.0.0.1:${port}/2`,
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}

/** A fresh redis-server for the enclosing test file: started before all tests, stopped after. */
export function useRedis(): () => RedisServer {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('redis-server is not running (useRedis() hooks have not run)');
    return server;
  };
}
