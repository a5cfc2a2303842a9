import { promises as dns } from 'node:dns';
import * as net from 'node:net';
import type { EnvironmentConfig } from '../../config/load';
import { ok, problem, type CheckOutcome, type DoctorCheck } from './types';
import { skipWithoutVps } from './vps-scope';

/** Bound of one lookup; c-ares tries each server `tries` times. */
const LOOKUP = { timeout: 3000, tries: 2 };

/** Answers that mean "no record of this family" rather than a failed lookup. */
const NO_RECORDS = new Set(['ENODATA', 'ENOTFOUND']);

interface Addresses {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/** A resolver on the given servers (`ip`, `ip:port`, `[ip6]:port`), else the system's (resolv.conf). */
export function makeResolver(servers: readonly string[]): dns.Resolver {
  const resolver = new dns.Resolver(LOOKUP);
  if (servers.length > 0) resolver.setServers([...servers]);
  return resolver;
}

async function family(lookup: Promise<string[]>): Promise<string[]> {
  try {
    return await lookup;
  } catch (error) {
    if (NO_RECORDS.has((error as NodeJS.ErrnoException).code ?? '')) return [];
    throw error;
  }
}

async function addressesOf(resolver: dns.Resolver, name: string): Promise<Addresses> {
  const [v4, v6] = await Promise.all([family(resolver.resolve4(name)), family(resolver.resolve6(name))]);
  return { v4, v6 };
}

const show = (a: Addresses) => [...a.v4, ...a.v6].join(', ') || 'nothing';

/** The VPS's own addresses: vps.host itself when it is an IP address, else what it resolves to. */
export function vpsAddresses(config: EnvironmentConfig, resolver: dns.Resolver): Promise<Addresses> {
  const host = config.vps.host;
  if (net.isIPv4(host)) return Promise.resolve({ v4: [host], v6: [] });
  if (net.isIPv6(host)) return Promise.resolve({ v4: [], v6: [host] });
  return addressesOf(resolver, host);
}

/** A lookup that failed (not "no such record"): the DNS servers, or the way to them, are the problem. */
function lookupFailed(what: string, error: unknown, resolver: dns.Resolver): CheckOutcome {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return problem(
    'fail',
    `could not look up ${what}: ${code} from DNS server(s) ${resolver.getServers().join(', ')}`,
    'check the network and the DNS servers (or name others with --dns-server), then run doctor again',
  );
}

async function checkName(config: EnvironmentConfig, field: string, name: string, resolver: dns.Resolver, vps: Promise<Addresses>): Promise<CheckOutcome> {
  let expected: Addresses;
  let found: Addresses;
  try {
    expected = await vps;
  } catch (error) {
    return lookupFailed(`vps.host ${config.vps.host}`, error, resolver);
  }
  if (expected.v4.length + expected.v6.length === 0) {
    return problem('fail', `vps.host ${config.vps.host} has no A or AAAA record, so ${name} cannot be compared with it`, `check vps.host of ${config.envName} in lib/config/environments.ts and its DNS records`);
  }
  try {
    found = await addressesOf(resolver, name);
  } catch (error) {
    return lookupFailed(name, error, resolver);
  }
  const host = `vps.host ${config.vps.host}${net.isIP(config.vps.host) ? '' : ` = ${show(expected)}`}`;
  const target = expected.v4.length > 0 ? `${expected.v4.join(', ')} (vps.host)` : "the VPS's IPv4 address";
  const record = `create an A record ${name} -> ${target} at your DNS provider`;
  if (found.v4.length + found.v6.length === 0) return problem('fail', `${name} (${field}) has no A or AAAA record`, record);
  const wrongV4 = found.v4.filter((a) => !expected.v4.includes(a));
  // Without a known IPv6 address of the VPS an AAAA record cannot be verified, only reported.
  const wrongV6 = expected.v6.length > 0 ? found.v6.filter((a) => !expected.v6.includes(a)) : [];
  if (wrongV4.length + wrongV6.length > 0) {
    return problem(
      'fail',
      `${name} (${field}) resolves to ${show(found)}, not only to the VPS (${host}): ${[...wrongV4, ...wrongV6].join(', ')} is elsewhere, and Let's Encrypt cannot issue its certificate`,
      `${record}${expected.v6.length > 0 ? ' (and an AAAA record to its IPv6 address)' : ''}, and remove the other A/AAAA records of ${name}`,
    );
  }
  if (found.v4.length === 0 && expected.v6.length === 0) {
    return problem('fail', `${name} (${field}) has only AAAA records (${found.v6.join(', ')}), which cannot be checked against the VPS (${host}), and no A record`, record);
  }
  if (found.v6.length > 0 && expected.v6.length === 0) {
    return problem(
      'warn',
      `${name} (${field}) resolves to ${show(found)}: the A record is the VPS (${host}), the AAAA record ${found.v6.join(', ')} cannot be checked (no IPv6 address known for the VPS)`,
      `keep the AAAA record only if it is the VPS's IPv6 address; otherwise remove it (IPv6 clients would go there)`,
    );
  }
  return ok(`${name} (${field}) resolves to ${show(found)}, the VPS (${host})`);
}

/** One check per configured public host name: its A/AAAA records must point at the VPS (nginx serves it, Let's Encrypt validates it there). */
export function dnsChecks(config: EnvironmentConfig, servers: readonly string[]): DoctorCheck[] {
  const resolver = makeResolver(servers);
  let vps: Promise<Addresses> | undefined;
  const vpsOnce = () => (vps ??= vpsAddresses(config, resolver));
  return Object.entries(config.vps.hostnames)
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string')
    .map(([key, name]) => {
      const field = `vps.hostnames.${key}`;
      return {
        name: `dns ${field}`,
        severity: 'fail',
        actions: [],
        timeoutMs: 4 * LOOKUP.timeout * LOOKUP.tries,
        async run() {
          const skipped = skipWithoutVps(config);
          if (skipped) return skipped;
          return checkName(config, field, name, resolver, vpsOnce());
        },
      } satisfies DoctorCheck;
    });
}
