/**
 * Our own rules for the rendered compose stack. Each returns a list of
 * violations (empty = compliant), so a test can show both that the real
 * bundle passes and that a broken copy is caught.
 */

/** The parts of a compose file the rules read (parsed with `yaml`, aliases and merge keys resolved). */
export interface Compose {
  name?: string;
  services: Record<string, Service>;
  networks?: Record<string, { internal?: boolean } | null>;
  volumes?: Record<string, unknown>;
}

export interface Service {
  image?: string;
  ports?: Array<string | { published?: string | number; target?: number }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string; read_only?: boolean }>;
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
  networks?: string[] | Record<string, unknown>;
  depends_on?: string[] | Record<string, unknown>;
  entrypoint?: string[];
  command?: string[];
  user?: string;
  deploy?: { resources?: { limits?: { cpus?: string | number; memory?: string } } };
}

/** Tag with a patch-level version (x.y.z) or a digest; never latest or a bare major. */
export function unpinnedImages(compose: Compose): string[] {
  return Object.entries(compose.services).flatMap(([name, service]) => {
    const image = service.image ?? '';
    if (/@sha256:[a-f0-9]{64}$/.test(image)) return [];
    const tag = /:([^/:@]+)$/.exec(image)?.[1];
    if (!tag) return [`${name}: image "${image}" has no tag`];
    if (/latest/i.test(tag) || !/\d+\.\d+\.\d+/.test(tag)) return [`${name}: tag "${tag}" is not a specific version`];
    return [];
  });
}

/** Services another service waits for with `service_completed_successfully`: jobs that run and exit. */
export function oneShotServices(compose: Compose): string[] {
  const waited = Object.values(compose.services).flatMap((service) =>
    Array.isArray(service.depends_on) || !service.depends_on
      ? []
      : Object.entries(service.depends_on)
          .filter(([, dep]) => (dep as { condition?: string }).condition === 'service_completed_successfully')
          .map(([dependency]) => dependency),
  );
  return [...new Set(waited)].sort();
}

/**
 * A long-running service has a health check and restarts unless stopped; a
 * one-shot job (see oneShotServices) must not restart ("no"), or compose
 * would run it again after it exited 0 and `up --wait` could not see it done.
 */
export function missingHealthOrRestart(compose: Compose): string[] {
  const oneShots = oneShotServices(compose);
  return Object.entries(compose.services).flatMap(([name, service]) => {
    if (oneShots.includes(name)) return service.restart === 'no' ? [] : [`${name}: a one-shot job with restart ${String(service.restart)} (want "no")`];
    const problems: string[] = [];
    const test = service.healthcheck?.test;
    if (!test || service.healthcheck?.disable || (Array.isArray(test) && (test.length < 2 || test[0] === 'NONE'))) {
      problems.push(`${name}: no health check`);
    }
    if (service.restart !== 'unless-stopped' && service.restart !== 'always') problems.push(`${name}: restart is ${String(service.restart)}`);
    return problems;
  });
}

/** Only nginx publishes ports, exactly 80 and 443 (each to the same container port). */
export function badPorts(compose: Compose): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    if (name !== 'nginx' && service.ports?.length) problems.push(`${name}: publishes ${JSON.stringify(service.ports)}`);
  }
  const published = (compose.services.nginx?.ports ?? []).map((p) => (typeof p === 'string' ? p : `${p.published}:${p.target}`)).sort();
  if (JSON.stringify(published) !== JSON.stringify(['443:443', '80:80'])) problems.push(`nginx: publishes ${JSON.stringify(published)}, expected 80:80 and 443:443`);
  return problems;
}

/**
 * Every volume is a named volume declared at top level, except read-only bind
 * mounts of files or folders that are part of the bundle (`./path:...:ro`).
 */
export function badVolumes(compose: Compose, bundleFiles: string[]): string[] {
  const declared = new Set(Object.keys(compose.volumes ?? {}));
  return Object.entries(compose.services).flatMap(([name, service]) =>
    (service.volumes ?? []).flatMap((volume) => {
      if (typeof volume !== 'string') return [`${name}: long-syntax volume ${JSON.stringify(volume)} (use the short form)`];
      const [source, , mode = ''] = volume.split(':');
      if (source.startsWith('./')) {
        const rel = source.slice(2).replace(/\/$/, '');
        const inBundle = bundleFiles.some((f) => f === rel || f.startsWith(`${rel}/`));
        if (!inBundle) return [`${name}: bind mount ${source} is not a file of the bundle`];
        if (!mode.split(',').includes('ro')) return [`${name}: bind mount ${source} is not read-only`];
        return [];
      }
      if (source.startsWith('/') || source.startsWith('~') || source.startsWith('.')) return [`${name}: host path ${source}`];
      return declared.has(source) ? [] : [`${name}: volume ${source} is not declared at top level`];
    }),
  );
}

const SECRET_NAME = /PASSWORD|SECRET|TOKEN|_KEY$|^KEY|AUTH$/;

/**
 * No literal secret: every variable whose name looks secret holds only
 * `${VAR:?message}` interpolations, and every secret-looking `${VAR}` used
 * anywhere in the file is required (`:?`), never defaulted.
 */
export function literalSecrets(compose: Compose, rawText: string): string[] {
  const problems: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    for (const [key, value] of Object.entries(envOf(service))) {
      if (!SECRET_NAME.test(key)) continue;
      const rest = String(value ?? '').replace(/\$\{[A-Z0-9_]+:\?[^}]*\}/g, '');
      if (rest !== '' || value === null || value === '') problems.push(`${name}: ${key} is not interpolated from .env with :?`);
    }
    for (const [key, value] of Object.entries(envOf(service))) {
      const password = /:\/\/[^:/@\s]+:([^@\s]+)@/.exec(String(value ?? ''))?.[1];
      if (password !== undefined && !/^\$\{[A-Z0-9_]+:\?[^}]*\}$/.test(password)) problems.push(`${name}: ${key} holds a literal password in a URL`);
    }
  }
  for (const match of rawText.matchAll(/\$\{([A-Z0-9_]+)([^}]*)\}/g)) {
    if (SECRET_NAME.test(match[1]) && !match[2].startsWith(':?')) problems.push(`\${${match[1]}${match[2]}} is not required with :?`);
  }
  return problems;
}

export function envOf(service: Service): Record<string, string | number | boolean | null> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return env;
  return Object.fromEntries(env.map((line) => [line.split('=')[0], line.includes('=') ? line.slice(line.indexOf('=') + 1) : null]));
}

/** Every `${VAR}` in the compose text. */
export function referencedVariables(rawText: string): string[] {
  return [...new Set([...rawText.matchAll(/\$\{([A-Z0-9_]+)/g)].map((m) => m[1]))].sort();
}

/** `.env.example`: each variable with a comment line right above it and a placeholder value. */
export function documentedVariables(envExample: string): { documented: string[]; problems: string[] } {
  const lines = envExample.split('\n');
  const documented: string[] = [];
  const problems: string[] = [];
  lines.forEach((line, i) => {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!match) return;
    documented.push(match[1]);
    if (!lines[i - 1]?.startsWith('#')) problems.push(`${match[1]} has no comment above it`);
    if (match[2] !== 'change-me' && match[2] !== '') problems.push(`${match[1]} has a value other than the placeholder change-me`);
  });
  return { documented: documented.sort(), problems };
}

/** CPU and memory limits of every service: each set, and the sums within the budget. */
export function resourceTotals(compose: Compose): { cpus: number; memoryMiB: number; problems: string[] } {
  let centiCpus = 0;
  let memoryMiB = 0;
  const problems: string[] = [];
  for (const [name, service] of Object.entries(compose.services)) {
    const limits = service.deploy?.resources?.limits;
    const cpus = Number(limits?.cpus);
    const memory = /^(\d+)([MG])$/.exec(String(limits?.memory ?? ''));
    if (!(cpus > 0)) problems.push(`${name}: no CPU limit`);
    else centiCpus += Math.round(cpus * 100);
    if (!memory) problems.push(`${name}: no memory limit in M or G`);
    else memoryMiB += Number(memory[1]) * (memory[2] === 'G' ? 1024 : 1);
  }
  return { cpus: centiCpus / 100, memoryMiB, problems };
}

/** The `server { ... }` blocks of an nginx file, found by brace matching. */
export function serverBlocks(conf: string): string[] {
  const blocks: string[] = [];
  const text = conf.replace(/#.*$/gm, '');
  for (const match of text.matchAll(/\bserver\s*\{/g)) {
    let depth = 0;
    for (let i = match.index + match[0].length - 1; i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) {
        blocks.push(text.slice(match.index, i + 1));
        break;
      }
    }
  }
  return blocks;
}

/** Per host: exactly one TLS server block, with WebSocket upgrade headers and the per-IP rate limit. */
export function badServerBlocks(confs: string[], hosts: string[]): string[] {
  const tls = confs.flatMap(serverBlocks).filter((b) => /listen\s+443\s+ssl\s*;/.test(b));
  return hosts.flatMap((host) => {
    const mine = tls.filter((b) => new RegExp(`server_name\\s+${host.replace(/\./g, '\\.')}\\s*;`).test(b));
    if (mine.length !== 1) return [`${host}: ${mine.length} TLS server blocks`];
    const block = mine[0];
    const problems: string[] = [];
    if (!/proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;/.test(block) || !/proxy_set_header\s+Connection\s+\$connection_upgrade\s*;/.test(block)) {
      problems.push(`${host}: no WebSocket upgrade headers`);
    }
    if (!/limit_req\s+zone=perip\b/.test(block)) problems.push(`${host}: no per-IP rate limit`);
    if (!block.includes(`/etc/nginx/tls/${host}/fullchain.pem`)) problems.push(`${host}: not using its own certificate`);
    return problems;
  });
}
