import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { MiniContainer } from './support-compose/mini-container';
import { requireTools } from './support-compose/real-tools';
import { bindsOf, commandOf, envOf, type StackOnDisk, stackOnDisk } from './support-compose/stack-on-disk';
import { NO_GATEWAY } from './support-compose/settings';

/**
 * The redis service with Debian's redis-server 7.0 (the stack pins 7.4.7;
 * every setting in redis.conf exists since 7.0), started as the container
 * starts it: the compose entrypoint (redis/start.sh) as the redis user with
 * the bundle's redis.conf, the data volume at /data.
 */
jest.setTimeout(120_000);

const SETTINGS = NO_GATEWAY;

beforeAll(() => requireTools('redisServer', 'redisCli'));

function startRedis(stack: StackOnDisk, env = envOf(stack, 'redis')): MiniContainer {
  return MiniContainer.start(commandOf(stack, 'redis'), { user: stack.compose.services.redis.user, binds: bindsOf(stack, 'redis'), env });
}

/** The compose health check, run on the container's loopback with its environment (REDISCLI_AUTH). */
async function healthy(redis: MiniContainer, env: Record<string, string>): Promise<boolean> {
  const test = stack().compose.services.redis.healthcheck?.test as string[];
  return (await redis.exec(['sh', '-c', test[1]], env)).status === 0;
}

let cached: StackOnDisk | undefined;
function stack(): StackOnDisk {
  if (!cached) {
    cached = stackOnDisk(SETTINGS);
    const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'redis'], { encoding: 'utf8' })));
    fs.chownSync(cached.volumes.redis, uid, gid); // the image's /data belongs to redis
  }
  return cached;
}

test('starts with the password, turns healthy, refuses clients without it and keeps data across a restart', async () => {
  const s = stack();
  const env = envOf(s, 'redis');
  let redis = startRedis(s);
  try {
    await redis.waitFor('a healthy redis', () => healthy(redis, env), 60_000);
    expect((await redis.exec(['redis-cli', 'ping'])).output).toMatch(/NOAUTH/);
    const cli = (...args: string[]) => redis.exec(['redis-cli', '--no-auth-warning', ...args], { REDISCLI_AUTH: env.REDIS_PASSWORD });
    expect((await cli('config', 'get', 'maxmemory-policy')).output).toBe('maxmemory-policy\nnoeviction\n');
    expect((await cli('config', 'get', 'appendonly')).output).toBe('appendonly\nyes\n');
    // Sim's REDIS_URL: user default, database 1 (n8n's queue keeps database 0).
    const url = new URL(envOf(s, 'sim').REDIS_URL);
    expect([url.username, url.pathname, decodeURIComponent(url.password) === env.REDIS_PASSWORD]).toEqual(['default', '/1', true]);
    expect((await cli('--user', url.username, '-n', url.pathname.slice(1), 'set', 'kept', 'across-restarts')).output).toBe('OK\n');
    expect(await redis.stop()).toBe(0);
    redis = startRedis(s);
    await redis.waitFor('a healthy redis after the restart', () => healthy(redis, env), 60_000);
    expect((await redis.exec(['redis-cli', '--no-auth-warning', '-n', '1', 'get', 'kept'], { REDISCLI_AUTH: env.REDIS_PASSWORD })).output).toBe('across-restarts\n');
  } finally {
    await redis.stop();
  }
});

test('start.sh refuses a password that could break out of redis.conf, naming the variable', async () => {
  const s = stack();
  const run = await MiniContainer.run(commandOf(s, 'redis'), { user: 'redis', binds: bindsOf(s, 'redis'), env: { REDIS_PASSWORD: 'bad"\nrename-command x' } });
  expect(run).toEqual({ status: 1, output: 'start.sh: REDIS_PASSWORD must be set and hold only A-Z a-z 0-9 _ -\n' });
});
