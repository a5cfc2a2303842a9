import { CfnResource, Reference, Stack, Tokenization } from 'aws-cdk-lib';
import { createHash } from 'node:crypto';

/** A template's resources as CloudFormation reads them (only what the fingerprint needs is typed). */
type Resources = Record<string, { readonly Type: string; readonly Properties?: Record<string, unknown> }>;

/** The properties of one resource type whose change makes CloudFormation replace the resource. */
export interface ReplacingProperties {
  /** Top-level properties that replace the resource when they change. */
  readonly replacing: readonly string[];
  /** Object properties whose members all replace the resource, except the listed ones (updated in place). */
  readonly replacingExcept?: Readonly<Record<string, readonly string[]>>;
}

/**
 * What replaces each resource type the fleet and the alert topic depend on, as the CloudFormation
 * service spec marks it (`causesReplacement` yes or maybe; @aws-cdk/aws-service-spec, the database
 * `cdk diff` reads; test/replacement-fingerprint.test.ts checks this table against it). A type not
 * listed counts with all its properties: a needless Observability update, never a missed one.
 */
export const REPLACING_PROPERTIES: Readonly<Record<string, ReplacingProperties>> = {
  'AWS::EC2::SpotFleet': {
    replacing: [],
    replacingExcept: { SpotFleetRequestConfigData: ['Context', 'ExcessCapacityTerminationPolicy', 'TargetCapacity', 'TargetCapacityUnitType'] },
  },
  'AWS::EC2::Subnet': {
    replacing: [
      'AvailabilityZone',
      'AvailabilityZoneId',
      'CidrBlock',
      'Ipv4IpamPoolId',
      'Ipv4NetmaskLength',
      'Ipv6CidrBlock',
      'Ipv6IpamPoolId',
      'Ipv6Native',
      'Ipv6NetmaskLength',
      'OutpostArn',
      'VpcId',
    ],
  },
  'AWS::EC2::VPC': { replacing: ['CidrBlock', 'InstanceTenancy', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength', 'VpcEncryptionControl'] },
  'AWS::EC2::LaunchTemplate': { replacing: ['LaunchTemplateName'] },
  'AWS::IAM::Role': { replacing: ['Path', 'RoleName'] },
  'AWS::SNS::Topic': { replacing: ['FifoTopic', 'TopicName'] },
};

/** JSON with object keys sorted, so equal values give equal text whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** 12 hex digits of the SHA-256 of a value's canonical JSON: short enough for a name suffix. */
export function shortHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex').slice(0, 12);
}

function pickReplacing(type: string, properties: Record<string, unknown>): Record<string, unknown> {
  const rule = REPLACING_PROPERTIES[type];
  if (!rule) return properties;
  const picked: Record<string, unknown> = {};
  for (const name of rule.replacing) picked[name] = properties[name];
  for (const [name, except] of Object.entries(rule.replacingExcept ?? {})) {
    const value = properties[name];
    picked[name] =
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(Object.entries(value).filter(([k]) => !except.includes(k)))
        : value;
  }
  return picked;
}

/**
 * A resource's identity: its type and replacing properties, with every Ref or Fn::GetAtt to
 * another resource of the template replaced by that resource's identity. It changes exactly
 * when CloudFormation would replace the resource, including when a resource it references
 * is replaced (a new subnet id replaces the fleet although the fleet's own text is unchanged).
 */
export function replacementIdentity(resources: Resources, logicalId: string, seen: ReadonlySet<string> = new Set()): unknown {
  const resource = resources[logicalId];
  if (!resource || seen.has(logicalId)) return { Ref: logicalId };
  const inner = new Set([...seen, logicalId]);
  const substitute = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(substitute);
    if (value === null || typeof value !== 'object') return value;
    const object = value as Record<string, unknown>;
    const keys = Object.keys(object);
    if (keys.length === 1 && keys[0] === 'Ref' && typeof object.Ref === 'string' && resources[object.Ref]) {
      return { Ref: replacementIdentity(resources, object.Ref, inner) };
    }
    const getAtt = object['Fn::GetAtt'];
    if (keys.length === 1 && Array.isArray(getAtt) && typeof getAtt[0] === 'string' && resources[getAtt[0]]) {
      return { 'Fn::GetAtt': [replacementIdentity(resources, getAtt[0], inner), ...getAtt.slice(1)] };
    }
    return Object.fromEntries(keys.map((k) => [k, substitute(object[k])]));
  };
  return { Type: resource.Type, Properties: substitute(pickReplacing(resource.Type, resource.Properties ?? {})) };
}

/** The CloudFormation resource a token such as `fleet.ref` or `topic.topicArn` stands for. */
export function referencedResource(value: string): CfnResource {
  const token = Tokenization.reverseString(value).firstToken;
  const target = token instanceof Reference ? token.target : undefined;
  if (!(target instanceof CfnResource)) throw new Error(`Expected a reference to a CloudFormation resource, got ${value}.`);
  return target;
}

/** The resources of a stack as its template will hold them (call at synthesis, e.g. in a Lazy). */
function templateResources(stack: Stack): Resources {
  const resources: Resources = {};
  for (const child of stack.node.findAll()) {
    if (!(child instanceof CfnResource) || Stack.of(child) !== stack) continue;
    Object.assign(resources, (stack.resolve(child._toCloudFormation()) as { Resources: Resources }).Resources);
  }
  return resources;
}

/** A short hash of the replacement identities of the given resources (each in its own stack). */
export function replacementFingerprint(targets: readonly CfnResource[]): string {
  const templates = new Map<Stack, Resources>();
  return shortHash(
    targets.map((target) => {
      const stack = Stack.of(target);
      if (!templates.has(stack)) templates.set(stack, templateResources(stack));
      return { stack: stack.stackName, identity: replacementIdentity(templates.get(stack)!, stack.getLogicalId(target)) };
    }),
  );
}
