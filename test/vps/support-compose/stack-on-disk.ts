import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { deriveSecrets } from '../../../lib/vps/app-secrets';
import { renderBundle, requiredSecrets, type VpsBundleSettings } from '../../../lib/vps/bundle';
import { tempDir } from '../../support/synth';
import type { Compose, Service } from './compose-rules';

/** A rendered bundle written out the way the deployer uploads it, with its .env secrets. */
export interface StackOnDisk {
  dir: string;
  compose: Compose;
  secrets: Record<string, string>;
  /** Host folder standing in for each named volume. */
  volumes: Record<string, string>;
}

export const TEST_SEED = 'real-tool-test-seed-0123456789abcdef0123456789abcdef';

/** Stand-ins for the gateway's access key (the Gpu stack's secret), shaped like AWS's. */
export const TEST_GATEWAY_CREDENTIAL = { GATEWAY_AWS_ACCESS_KEY_ID: 'AKIAGATEWAYTESTKEY01', GATEWAY_AWS_SECRET_ACCESS_KEY: 'gatewayTestSecretKey/0123456789+abcdefghij' };

export function stackOnDisk(settings: VpsBundleSettings, secrets = { ...deriveSecrets(TEST_SEED, requiredSecrets(settings)), ...TEST_GATEWAY_CREDENTIAL }): StackOnDisk {
  const bundle = renderBundle(settings);
  const dir = tempDir('bundle-');
  for (const [file, content] of Object.entries(bundle.files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
  const compose = parse(bundle.files['docker-compose.yml'], { merge: true }) as Compose;
  const volumes = Object.fromEntries(Object.keys(compose.volumes ?? {}).map((name) => [name, tempDir(`volume-${name}-`)]));
  return { dir, compose, secrets, volumes };
}

/** The service's volumes as [host path, container path] binds: bundle files and the named-volume folders. */
export function bindsOf(stack: StackOnDisk, service: string): Array<[string, string]> {
  return (stack.compose.services[service].volumes ?? []).map((volume) => {
    const [source, target] = String(volume).split(':');
    const host = source.startsWith('./') ? path.join(stack.dir, source) : stack.volumes[source];
    if (!host) throw new Error(`${service}: volume ${source} is neither a bundle path nor a named volume`);
    return [host, target];
  });
}

/** The service's environment with `${VAR:?...}` filled from the secrets (compose's interpolation of .env). */
export function envOf(stack: StackOnDisk, service: string, secrets = stack.secrets): Record<string, string> {
  const env = (stack.compose.services[service] as Service).environment ?? {};
  if (Array.isArray(env)) throw new Error(`${service}: list-form environment is not used in this stack`);
  return Object.fromEntries(
    Object.entries(env).map(([key, value]) => [
      key,
      String(value ?? '').replace(/\$\{([A-Z0-9_]+):\?[^}]*\}/g, (_m, name: string) => {
        if (secrets[name] === undefined) throw new Error(`${service}: ${name} is not among the secrets`);
        return secrets[name];
      }),
    ]),
  );
}

/** entrypoint + command, as the container runs them. */
export function commandOf(stack: StackOnDisk, service: string): string[] {
  const s = stack.compose.services[service];
  return [...(s.entrypoint ?? []), ...(s.command ?? [])];
}
