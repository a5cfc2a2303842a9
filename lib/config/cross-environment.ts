import { cidrRange, isCidr } from './rules';

/** A value one environment holds that another environment must not hold too. */
interface Claim {
  readonly env: string;
  readonly field: string;
  readonly value: string;
}

/** Fields whose values must differ between environments: each deploy owns its VPS host, names and VPC range. */
const UNIQUE_FIELDS = ['vps.host', 'vps.hostnames.n8n', 'vps.hostnames.sim', 'vps.hostnames.gateway'] as const;
const VPC_CIDR = 'network.vpcCidr';

/**
 * Lines `env.field = value: allowed is ...` for every clash between two environments, each clash
 * reported once (on the environment listed later). Fields that are missing or malformed are left to
 * the per-environment validation.
 */
export function crossEnvironmentProblems(environments: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const hosts: Claim[] = [];
  const cidrs: Claim[] = [];
  for (const [env, raw] of Object.entries(environments)) {
    for (const field of UNIQUE_FIELDS) {
      const value = stringAt(raw, field);
      if (value === undefined) continue;
      // One name may serve one role only: the VPS host of one environment is no site of another either.
      const clash = hosts.find((claim) => claim.env !== env && claim.value === value);
      if (clash) problems.push(line(env, field, value, `a value no other environment uses (${clash.env}.${clash.field} has it)`));
      hosts.push({ env, field, value });
    }
    const cidr = stringAt(raw, VPC_CIDR);
    if (cidr !== undefined && isCidr(cidr, 0, 32)) {
      const clash = cidrs.find((claim) => overlaps(claim.value, cidr));
      if (clash) problems.push(line(env, VPC_CIDR, cidr, `a CIDR block that does not overlap ${clash.env}.${VPC_CIDR} (${clash.value})`));
      cidrs.push({ env, field: VPC_CIDR, value: cidr });
    }
  }
  return problems;
}

function overlaps(a: string, b: string): boolean {
  const [aFirst, aLast] = cidrRange(a);
  const [bFirst, bLast] = cidrRange(b);
  return aFirst <= bLast && bFirst <= aLast;
}

function line(env: string, field: string, value: string, allowed: string): string {
  return `${env}.${field} = ${JSON.stringify(value)}: allowed is ${allowed}`;
}

function stringAt(raw: unknown, dotted: string): string | undefined {
  let current: unknown = raw;
  for (const key of dotted.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return typeof current === 'string' ? current : undefined;
}
