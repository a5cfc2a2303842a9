import { _InstanceType } from '@aws-sdk/client-ec2';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import { z } from 'zod';

/**
 * Reusable field rules. Every rule carries one `allowed` sentence, used as the
 * error text so that a failed synth says exactly what the field accepts, and kept as
 * schema metadata so that the README's config table says it too.
 */

/** Metadata key of the `allowed` sentence (read by the README table generator). */
export interface AllowedMeta {
  readonly allowed: string;
}

export function wholeNumber(min: number, max: number, unit = ''): z.ZodNumber {
  const allowed = `a whole number from ${min} to ${max}${unit ? ` ${unit}` : ''}`;
  return z
    .number({ error: allowed })
    .int({ error: allowed })
    .min(min, { error: allowed })
    .max(max, { error: allowed })
    .meta({ allowed });
}

/** Any number (fractions too) from `min` to `max`, e.g. "a number of hours from 0 to 24". */
export function numberBetween(min: number, max: number, unit: string): z.ZodNumber {
  const allowed = `a number of ${unit} from ${min} to ${max}`;
  return z.number({ error: allowed }).min(min, { error: allowed }).max(max, { error: allowed }).meta({ allowed });
}

/** A quantity of `unit` that may be 0, e.g. "GB, 0 or more". */
export function zeroOrMore(unit: string): z.ZodNumber {
  const allowed = `${unit}, 0 or more`;
  return z.number({ error: allowed }).min(0, { error: allowed }).meta({ allowed });
}

export function positiveAmount(max: number, unit: string): z.ZodNumber {
  const allowed = `a number greater than 0 and at most ${max} ${unit}`;
  return z.number({ error: allowed }).gt(0, { error: allowed }).max(max, { error: allowed }).meta({ allowed });
}

export function pattern(regex: RegExp, allowed: string): z.ZodString {
  return z.string({ error: allowed }).regex(regex, { error: allowed }).meta({ allowed });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  const allowed = `one of ${values.map((v) => `"${v}"`).join(', ')}`;
  return z.enum(values, { error: allowed }).meta({ allowed });
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** Lower-case RFC 1123 DNS name with at least one dot and an alphabetic top-level label (so never an IPv4 address). */
const DNS_NAME = new RegExp(`^(?=.{1,253}$)(?:${LABEL}\\.)+[a-z]{2,63}$`);
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isIpv4(value: string): boolean {
  const match = IPV4.exec(value);
  return match !== null && match.slice(1).every((octet) => Number(octet) <= 255);
}

/** The SSH host: a DNS name or an IPv4 address whose octets are 0 to 255. */
const HOST_ALLOWED = 'a lower-case DNS host name such as vps.example.com or an IPv4 address with octets from 0 to 255';
export const hostName = z
  .string({ error: HOST_ALLOWED })
  .refine((value) => DNS_NAME.test(value) || isIpv4(value), { error: HOST_ALLOWED })
  .meta({ allowed: HOST_ALLOWED });

/** A name nginx serves with a Let's Encrypt certificate: DNS names only. */
export const publicHostName = pattern(
  DNS_NAME,
  "a lower-case DNS name with at least one dot, such as n8n.example.com (Let's Encrypt issues no certificate for IP addresses)",
);

/** An https URL without credentials, query or fragment: it is written into the compose file, and secrets belong in .env. */
export const httpsUrl = pattern(
  /^https:\/\/[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d{1,5})?(\/[A-Za-z0-9._~\/-]*)?$/,
  'an https URL such as https://comfy.example.com/ (lower-case host name, optional port and path; no user, query or fragment)',
);

// ASCII only, no quotes or spaces: the address is written into YAML and shell on the VPS.
const EMAIL = /^[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$/;
export const email = pattern(EMAIL, 'an e-mail address such as ops@example.com (letters, digits and . _ % + - before the @)');

/** IPv4 CIDR with the address part checked octet by octet and no host bits set. */
export function ipv4Cidr(minPrefix: number, maxPrefix: number): z.ZodType<string> {
  const allowed = `an IPv4 CIDR block with a prefix from /${minPrefix} to /${maxPrefix} and no host bits set, e.g. ${
    maxPrefix === 32 ? '203.0.113.10/32' : '10.40.0.0/16'
  }`;
  return z
    .string({ error: allowed })
    .refine((value) => isCidr(value, minPrefix, maxPrefix), { error: allowed })
    .meta({ allowed });
}

/** The RFC 1918 private blocks as [first address, prefix]. */
const RFC1918: ReadonlyArray<readonly [number, number]> = [
  [cidrRange('10.0.0.0/8')[0], 8],
  [cidrRange('172.16.0.0/12')[0], 12],
  [cidrRange('192.168.0.0/16')[0], 16],
];

/** A private (RFC 1918) IPv4 CIDR block, as a VPC needs. */
export function privateIpv4Cidr(minPrefix: number, maxPrefix: number): z.ZodType<string> {
  const allowed = `an RFC 1918 private IPv4 CIDR block (inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) with a prefix from /${minPrefix} to /${maxPrefix} and no host bits set, e.g. 10.40.0.0/16`;
  return z
    .string({ error: allowed })
    .refine((value) => isCidr(value, minPrefix, maxPrefix) && isPrivateCidr(value), { error: allowed })
    .meta({ allowed });
}

function isPrivateCidr(value: string): boolean {
  const [first, last] = cidrRange(value);
  return RFC1918.some(([start, prefix]) => first >= start && last < start + 2 ** (32 - prefix));
}

/** First and last address of a well-formed CIDR block, as numbers. */
export function cidrRange(value: string): [number, number] {
  const [address, prefix] = value.split('/');
  const first = address.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return [first, first + 2 ** (32 - Number(prefix)) - 1];
}

export function isCidr(value: string, minPrefix: number, maxPrefix: number): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (!match) return false;
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((o) => o > 255) || prefix < minPrefix || prefix > maxPrefix) return false;
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const hostBits = 2 ** (32 - prefix);
  return address % hostBits === 0;
}

/**
 * x86_64 NVIDIA GPU families that the Base OSS Nvidia Driver DLAMI supports and Spot offers: its
 * release notes list `supported_ec2_instances` G4dn, G5, G6, Gr6, G6e, G7e, P4d, P4de, P5, P5e, P5en, P6
 * ("Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20260130",
 * https://docs.aws.amazon.com/dlami/latest/devguide/aws-deep-learning-ami-gpubaseoss-ul2204-2026-02-03.html).
 */
export const GPU_FAMILIES = ['g4dn', 'g5', 'g6', 'g6e', 'gr6', 'p4d', 'p5'] as const;

/** Families that look like GPU types but the AMI does not run, with the reason the error gives. */
const UNSUPPORTED_GPU_FAMILIES: Readonly<Record<string, string>> = {
  p3: 'not p3: its NVIDIA V100 (Volta) is not supported by the Base OSS Nvidia Driver DLAMI, whose open-source NVIDIA kernel driver needs a Turing (g4dn) or newer GPU',
};

const GPU_TYPE = new RegExp(`^(${GPU_FAMILIES.join('|')})\\.(\\d*xlarge|metal)$`);
const GPU_TYPE_ALLOWED = `an x86_64 NVIDIA GPU instance type of family ${GPU_FAMILIES.join(', ')} (e.g. g4dn.xlarge)`;

/** Every instance type the EC2 API knows, from the SDK's API model (kept current with each SDK release). */
const EC2_INSTANCE_TYPES: ReadonlySet<string> = new Set(Object.values(_InstanceType));

export const gpuInstanceType = z
  .string({ error: GPU_TYPE_ALLOWED })
  .refine((value) => GPU_TYPE.test(value) && EC2_INSTANCE_TYPES.has(value), {
    error: (issue) => {
      const value = typeof issue.input === 'string' ? issue.input : '';
      const family = value.split('.')[0];
      const reason = Object.hasOwn(UNSUPPORTED_GPU_FAMILIES, family) ? UNSUPPORTED_GPU_FAMILIES[family] : undefined;
      if (reason) return `${GPU_TYPE_ALLOWED}; ${reason}`;
      if (GPU_TYPE.test(value)) return `${GPU_TYPE_ALLOWED}; ${value} is not an EC2 instance type`;
      return GPU_TYPE_ALLOWED;
    },
  })
  .meta({ allowed: GPU_TYPE_ALLOWED });

/** Region codes aws-cdk-lib's region-info database knows (updated with every aws-cdk-lib release). */
const REGIONS: ReadonlySet<string> = new Set(RegionInfo.regions.map((r) => r.name));
const REGION_ALLOWED = 'an AWS region code that aws-cdk-lib knows, such as us-east-1';
export const awsRegion = z
  .string({ error: REGION_ALLOWED })
  .refine((value) => REGIONS.has(value), { error: REGION_ALLOWED })
  .meta({ allowed: REGION_ALLOWED });
