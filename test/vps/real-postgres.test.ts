import { execFileSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MiniContainer, type RunResult } from './support-compose/mini-container';
import { requireTools, TOOLS } from './support-compose/real-tools';
import { bindsOf, commandOf, envOf, type StackOnDisk, stackOnDisk } from './support-compose/stack-on-disk';
import { NO_GATEWAY } from './support-compose/settings';

/**
 * Deploys of the stack's database part with Debian's PostgreSQL 15 and
 * pgvector (0.8.0 from Debian's source; the image has 0.8.1), started the way
 * the pgvector/pgvector:0.8.1-pg15-bookworm container starts: a stand-in for
 * the postgres image's entrypoint (support-compose/postgres-entrypoint.sh,
 * written from the upstream script at the version that image was built on; its
 * header lists what it models) with the compose service's command, environment
 * and mounts, then each one-shot job of the compose file that waits for
 * PostgreSQL (db-init) in the same network.
 * Deviations from the container, none of which the entrypoint's
 * initialisation logic reads: it starts as the postgres user (the image starts
 * as root only to create folders and re-exec itself through gosu), LANG is
 * C.UTF-8 (the image generates en_US.utf8), and the data volume is a folder.
 */
jest.setTimeout(240_000);

const SETTINGS = NO_GATEWAY;
const ENTRYPOINT = path.join(__dirname, 'support-compose', 'postgres-entrypoint.sh');
// The image's ENV (docker-library/postgres 15/bookworm/Dockerfile).
const IMAGE_ENV = { PGDATA: '/var/lib/postgresql/data', PG_MAJOR: '15', LANG: 'C.UTF-8', PATH: `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${TOOLS.postgresBin}` };

beforeAll(() => requireTools('postgresBin', 'pgvectorControl'));

interface Deploy {
  postgresHealthy: boolean;
  jobs: Record<string, RunResult>;
  output: string;
}

/** The services that wait for PostgreSQL and exit: one-shot jobs run on every `up`. */
function databaseJobs(stack: StackOnDisk): string[] {
  return Object.entries(stack.compose.services)
    .filter(([, s]) => s.restart === 'no' && s.image === stack.compose.services.postgres.image)
    .map(([name]) => name);
}

/** One `docker compose up` of postgres and its jobs; `whileUp` runs against the healthy server. */
async function deploy(stack: StackOnDisk, secrets: Record<string, string>, whileUp?: (pg: MiniContainer) => Promise<void>): Promise<Deploy> {
  const pg = MiniContainer.start(['/usr/local/bin/docker-entrypoint.sh', ...commandOf(stack, 'postgres')], {
    binds: [...bindsOf(stack, 'postgres'), [ENTRYPOINT, '/usr/local/bin/docker-entrypoint.sh']],
    dirs: [['/run/postgresql', 'postgres:postgres'], ['/docker-entrypoint-initdb.d', 'postgres:postgres']],
    user: 'postgres',
    env: { ...IMAGE_ENV, ...envOf(stack, 'postgres', secrets) },
    stopSignal: 'INT', // the image's STOPSIGNAL
  });
  const jobs: Record<string, RunResult> = {};
  try {
    const healthcheck = (stack.compose.services.postgres.healthcheck?.test as string[]).slice(1);
    await pg.waitFor('a healthy postgres', async () => (await pg.exec(healthcheck)).status === 0, 90_000);
  } catch {
    pg.kill();
    await pg.exited;
    return { postgresHealthy: false, jobs, output: pg.output };
  }
  for (const job of databaseJobs(stack)) {
    jobs[job] = await MiniContainer.run(commandOf(stack, job), {
      networkOf: pg,
      hosts: ['postgres'],
      binds: bindsOf(stack, job),
      env: { ...IMAGE_ENV, ...envOf(stack, job, secrets) },
    });
  }
  try {
    if (whileUp) await whileUp(pg);
  } finally {
    expect(await pg.stop()).toBe(0);
  }
  return { postgresHealthy: true, jobs, output: pg.output };
}

/** psql as a service's role with its password (from the environment, never the command line). */
async function psqlAs(pg: MiniContainer, role: string, password: string, sql: string): Promise<RunResult> {
  return pg.exec([`${TOOLS.postgresBin}/psql`, '-h', '127.0.0.1', '-U', role, '-d', role, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql], { PGPASSWORD: password });
}

/**
 * Whether the role's stored SCRAM-SHA-256 verifier accepts the password (RFC 5802
 * StoredKey/ServerKey). The image's pg_hba.conf trusts 127.0.0.1 (initdb's default;
 * passwords apply to the other containers), so a loopback login proves nothing.
 */
async function passwordAccepted(pg: MiniContainer, role: string, password: string): Promise<boolean> {
  const verifier = (await pg.exec([`${TOOLS.postgresBin}/psql`, '-h', '127.0.0.1', '-U', 'postgres', '-XAtc', `SELECT rolpassword FROM pg_authid WHERE rolname = '${role}'`])).output.trim();
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (!match) throw new Error(`${role} has no SCRAM verifier: ${verifier}`);
  const salted = pbkdf2Sync(password, Buffer.from(match[2], 'base64'), Number(match[1]), 32, 'sha256');
  const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest('base64');
  const serverKey = createHmac('sha256', salted).update('Server Key').digest('base64');
  return storedKey === match[3] && serverKey === match[4];
}

function freshStack(): StackOnDisk {
  const stack = stackOnDisk(SETTINGS);
  const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' })));
  fs.chownSync(stack.volumes.postgres, uid, gid); // a new volume takes the image folder's owner
  return stack;
}

test('a first deploy that fails part-way is repaired by the next deploy', async () => {
  const stack = freshStack();
  // The fault: the second role's password is refused after the n8n role and database exist.
  const first = await deploy(stack, { ...stack.secrets, SIM_DB_PASSWORD: 'too-short' });
  const firstFailed = !first.postgresHealthy || Object.values(first.jobs).some((j) => j.status !== 0);
  expect([firstFailed, first.output + JSON.stringify(first.jobs)]).toEqual([true, expect.stringMatching(/SIM_DB_PASSWORD must be at least 24 characters/)]);

  const second = await deploy(stack, stack.secrets, async (pg) => {
    const databases = await pg.exec([`${TOOLS.postgresBin}/psql`, '-h', '127.0.0.1', '-U', 'postgres', '-XAtc', "SELECT datname FROM pg_database WHERE datname IN ('n8n', 'sim') ORDER BY 1"]);
    expect(databases.output).toBe('n8n\nsim\n');
    expect(await psqlAs(pg, 'n8n', stack.secrets.N8N_DB_PASSWORD, 'SELECT current_user')).toEqual({ status: 0, output: 'n8n\n' });
    expect(await passwordAccepted(pg, 'n8n', stack.secrets.N8N_DB_PASSWORD)).toBe(true);
    expect(await passwordAccepted(pg, 'sim', stack.secrets.SIM_DB_PASSWORD)).toBe(true);
    const sim = await psqlAs(pg, 'sim', stack.secrets.SIM_DB_PASSWORD,
      "CREATE TABLE embeddings (v vector(3)); INSERT INTO embeddings VALUES ('[1,2,3]'); SELECT extversion FROM pg_extension WHERE extname = 'vector'; SELECT v <-> '[1,2,4]' FROM embeddings");
    expect(sim).toEqual({ status: 0, output: expect.stringMatching(/^0\.8\.\d+\n1\n$/) });
    // Another service's role cannot reach Sim's database.
    const crossing = await pg.exec([`${TOOLS.postgresBin}/psql`, '-h', '127.0.0.1', '-U', 'n8n', '-d', 'sim', '-Xc', 'SELECT 1'], { PGPASSWORD: stack.secrets.N8N_DB_PASSWORD });
    expect(crossing.output).toMatch(/permission denied for database "sim"/);
  });
  expect(second.output).toContain('Skipping initialization'); // the image's first-start hook never runs again
  expect(second.postgresHealthy).toBe(true);
  expect(Object.fromEntries(Object.entries(second.jobs).map(([name, job]) => [name, job.status]))).toEqual({ 'db-init': 0 });
});

test('every deploy ensures the same state without errors, and applies a changed role password', async () => {
  const stack = freshStack();
  const first = await deploy(stack, stack.secrets);
  expect(first.jobs['db-init']).toMatchObject({ status: 0 });
  const rotated = { ...stack.secrets, N8N_DB_PASSWORD: 'rotated-n8n-password-0123456789' };
  const again = await deploy(stack, rotated, async (pg) => {
    expect(await passwordAccepted(pg, 'n8n', rotated.N8N_DB_PASSWORD)).toBe(true);
    expect(await passwordAccepted(pg, 'n8n', stack.secrets.N8N_DB_PASSWORD)).toBe(false);
  });
  expect(again.jobs['db-init']).toEqual({ status: 0, output: expect.not.stringMatching(/ERROR|already exists/) });
  expect(again.jobs['db-init'].output).toContain('extension vector ready in sim');
});
