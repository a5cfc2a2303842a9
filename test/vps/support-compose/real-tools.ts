import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Where scripts/test-all.sh puts the real programs the stack tests run. Debian
 * 12's own packages where they suffice (PostgreSQL 15, redis-server); Debian
 * 13's nginx 1.26 and Compose v2 (docker-compose 2.26) unpacked under
 * .venv-test-tools/debian (Debian 12 has only nginx 1.22, which lacks
 * `http2 on`, and Compose v1); pgvector 0.8.0 built from Debian 13's source
 * package against PostgreSQL 15.
 */
const ROOT = path.join(__dirname, '..', '..', '..');
const DEBIAN = path.join(ROOT, '.venv-test-tools', 'debian');

export const TOOLS = {
  nginx: path.join(DEBIAN, 'usr', 'sbin', 'nginx'),
  nginxMimeTypes: path.join(DEBIAN, 'etc', 'nginx', 'mime.types'),
  compose: path.join(DEBIAN, 'usr', 'libexec', 'docker', 'cli-plugins', 'docker-compose'),
  postgresBin: '/usr/lib/postgresql/15/bin',
  pgvectorControl: '/usr/share/postgresql/15/extension/vector.control',
  redisServer: '/usr/bin/redis-server',
  redisCli: '/usr/bin/redis-cli',
} as const;

/** Fails with what to run when a tool is missing (never skips: the suite must test the real thing). */
export function requireTools(...names: Array<keyof typeof TOOLS>): void {
  const missing = names.filter((name) => !fs.existsSync(TOOLS[name])).map((name) => `${name} (${TOOLS[name]})`);
  if (missing.length > 0) throw new Error(`missing real tools: ${missing.join(', ')}; run bash scripts/test-all.sh once, which installs them`);
}
