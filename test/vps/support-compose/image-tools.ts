/**
 * The programs each pinned image ships that a health check or a one-shot
 * command may call, read from the image's published build files (no image can
 * be pulled here). Bumping an image tag breaks the tag match below until
 * someone re-reads the new version's files.
 */
export interface ImageTools {
  /** The pinned tag this list was read for. */
  tag: string;
  tools: string[];
  source: string;
}

export const IMAGE_TOOLS: Record<string, ImageTools> = {
  nginx: {
    tag: '1.27.5-alpine',
    // nginx:*-alpine is FROM nginx:*-alpine-slim, which is FROM alpine:3.21 (busybox: sh, wget) and adds curl.
    tools: ['/bin/sh', 'sh', 'wget', 'curl', 'nginx'],
    source: 'nginxinc/docker-nginx mainline/alpine/Dockerfile and mainline/alpine-slim/Dockerfile (1.27.4 is the newest tag stored here; 1.27.5 changed only the version)',
  },
  'certbot/certbot': {
    tag: 'v2.11.0',
    tools: ['/bin/sh', 'sh', 'openssl', 'wget', 'certbot'],
    source: 'certbot/certbot tools/docker/Dockerfile: FROM python:*-alpine (busybox sh and wget), apk add openssl, in every version stored here (v2.11.0 itself is not)',
  },
  'pgvector/pgvector': {
    tag: '0.8.1-pg15-bookworm',
    tools: ['/bin/sh', 'sh', 'pg_isready', 'psql', 'postgres'],
    source: 'pgvector/pgvector Dockerfile at v0.8.1 (FROM postgres:$PG_MAJOR-bookworm); docker-library/postgres 15/bookworm/Dockerfile puts /usr/lib/postgresql/15/bin on PATH',
  },
  redis: {
    tag: '7.4.7-alpine',
    tools: ['/bin/sh', 'sh', 'redis-cli', 'redis-server', 'grep'],
    source: 'docker-library/redis 7.4/alpine/Dockerfile (alpine + make install of redis-server and redis-cli)',
  },
  'n8nio/n8n': {
    tag: '1.123.37',
    // The base image's busybox wget is not certain (dhi.io node alpine -dev base), node is.
    tools: ['node', 'n8n', 'sh'],
    source: 'n8n-io/n8n docker/images/n8n/Dockerfile (FROM n8nio/base:22, ENTRYPOINT tini -- docker-entrypoint.sh)',
  },
  'ghcr.io/simstudioai/migrations': {
    tag: 'v0.8.9',
    tools: ['bun', 'sh'],
    source: 'simstudioai/sim docker/db.Dockerfile at v0.8.9 (oven/bun:1.3.14-alpine, WORKDIR /app/packages/db)',
  },
  'ghcr.io/simstudioai/realtime': {
    tag: 'v0.8.9',
    tools: ['bun', 'sh', 'curl'],
    source: 'simstudioai/sim docker/realtime.Dockerfile at v0.8.9 (oven/bun:1.3.14-alpine, apk add libc6-compat curl)',
  },
  'ghcr.io/simstudioai/simstudio': {
    tag: 'v0.8.9',
    // Debian slim: no busybox, so no wget.
    tools: ['bun', 'node', 'bash', 'sh', 'curl', 'python3', 'ffmpeg'],
    source: 'simstudioai/sim docker/app.Dockerfile at v0.8.9 (oven/bun:1.3.14-slim, apt-get install python3 curl ca-certificates bash ffmpeg nodejs)',
  },
  'ghcr.io/simstudioai/cron': {
    tag: 'v0.8.9',
    tools: ['/bin/sh', 'sh', 'curl', 'supercronic'],
    source: 'simstudioai/sim docker/cron.Dockerfile at v0.8.9 (alpine:3.21, apk add ca-certificates curl tzdata, supercronic)',
  },
  node: {
    tag: '24.11.1-alpine3.22',
    // alpine:3.22 (busybox sh and wget) plus node in /usr/local/bin; adduser -D node makes /home/node (uid 1000).
    tools: ['node', 'sh', '/bin/sh', 'wget'],
    source: 'nodejs/docker-node 24/alpine3.22/Dockerfile (FROM alpine:3.22, addgroup/adduser -u 1000 node, ENTRYPOINT docker-entrypoint.sh)',
  },
  'ollama/ollama': {
    tag: '0.13.5',
    // ubuntu:24.04 plus ca-certificates and libvulkan1 only: no curl, no wget.
    tools: ['ollama', 'sh'],
    source: 'ollama/ollama Dockerfile at v0.13.5 (FROM ubuntu:24.04, ENTRYPOINT /bin/ollama)',
  },
};

/** The first word of each command in a CMD-SHELL string (split on ; && || |). */
function shellCommands(script: string): string[] {
  return script
    .split(/;|&&|\|\||\|/)
    .map((part) => part.trim().split(/\s+/)[0])
    .filter((word) => word !== '' && !/^\w+=/.test(word));
}

/** The programs a health check's test runs. */
export function healthCheckPrograms(test: string | string[]): string[] {
  if (typeof test === 'string') return shellCommands(test);
  if (test[0] === 'CMD-SHELL') return shellCommands(test.slice(1).join(' '));
  if (test[0] === 'CMD') return [test[1]];
  return [];
}

export interface ServiceImage {
  image?: string;
  healthcheck?: { test?: string | string[] };
  entrypoint?: string[];
}

/**
 * Every health check and entrypoint runs a program its pinned image
 * ships. `userImages` are services whose image is configured by the user (not
 * known here); they are skipped.
 */
export function missingTools(services: Record<string, ServiceImage>, userImages: string[] = []): string[] {
  return Object.entries(services).flatMap(([name, service]) => {
    if (userImages.includes(name)) return [];
    const image = service.image ?? '';
    const named = image.replace(/@sha256:[0-9a-f]{64}$/, ''); // the tag names the version the digest was taken for
    const colon = named.lastIndexOf(':');
    const [repo, tag] = [named.slice(0, colon), named.slice(colon + 1)];
    const known = IMAGE_TOOLS[repo];
    if (!known) return [`${name}: no published build file read for ${repo}`];
    if (known.tag !== tag) return [`${name}: ${repo} is pinned to ${tag}, but its tools were read for ${known.tag}`];
    const programs = [
      ...(service.healthcheck?.test ? healthCheckPrograms(service.healthcheck.test) : []),
      ...(service.entrypoint ? [service.entrypoint[0]] : []),
    ];
    return programs.filter((p) => !known.tools.includes(p)).map((p) => `${name}: ${p} is not in ${image} (${known.source})`);
  });
}
