import { db, type SpecProperty } from '../lib/diff/spec';
import { canonicalJson, REPLACING_PROPERTIES, replacementIdentity, shortHash } from '../lib/replacement-fingerprint';

/** The CloudFormation service spec that `cdk diff` judges replacements by (lib/diff/spec.ts loads it). */
const spec = db;

const replaces = (p: SpecProperty) => p.causesReplacement === 'yes' || p.causesReplacement === 'maybe';

describe('REPLACING_PROPERTIES', () => {
  test('matches the service spec: exactly the properties whose change replaces each type', () => {
    const db = spec();
    for (const [type, rule] of Object.entries(REPLACING_PROPERTIES)) {
      const resource = db.lookup('resource', 'cloudFormationType', 'equals', type)[0];
      const props = resource.properties;
      const topLevel = Object.keys(props).filter((k) => replaces(props[k])).sort();
      expect([type, [...rule.replacing].sort()]).toEqual([type, topLevel]);
      for (const [name, except] of Object.entries(rule.replacingExcept ?? {})) {
        const shape = db.get('typeDefinition', props[name].type.reference!.$ref);
        const updatable = Object.keys(shape.properties).filter((k) => !replaces(shape.properties[k])).sort();
        expect([type, name, [...except].sort()]).toEqual([type, name, updatable]);
      }
    }
  });
});

describe('replacementIdentity', () => {
  const template = {
    Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.40.0.0/16', EnableDnsSupport: true } },
    Subnet: { Type: 'AWS::EC2::Subnet', Properties: { VpcId: { Ref: 'Vpc' }, CidrBlock: '10.40.0.0/24', MapPublicIpOnLaunch: true } },
    Role: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: { Statement: [] } } },
    Fleet: {
      Type: 'AWS::EC2::SpotFleet',
      Properties: {
        SpotFleetRequestConfigData: {
          TargetCapacity: 0,
          IamFleetRole: { 'Fn::GetAtt': ['Role', 'Arn'] },
          LaunchTemplateConfigs: [{ Overrides: [{ InstanceType: 'g4dn.xlarge', SubnetId: { Ref: 'Subnet' } }] }],
        },
        Tags: [{ Key: 'a', Value: 'b' }],
      },
    },
  };
  const id = (t: typeof template) => shortHash(replacementIdentity(t, 'Fleet'));
  const changed = (edit: (t: any) => void) => {
    const t = structuredClone(template);
    edit(t);
    return id(t);
  };

  test('changes with what replaces the fleet, directly or through a resource it references', () => {
    expect(changed((t) => (t.Fleet.Properties.SpotFleetRequestConfigData.LaunchTemplateConfigs[0].Overrides[0].InstanceType = 'g5.xlarge'))).not.toBe(id(template));
    expect(changed((t) => (t.Subnet.Properties.CidrBlock = '10.40.1.0/24'))).not.toBe(id(template));
    expect(changed((t) => (t.Vpc.Properties.CidrBlock = '10.41.0.0/16'))).not.toBe(id(template));
    expect(changed((t) => (t.Role.Properties = { ...t.Role.Properties, RoleName: 'named' }))).not.toBe(id(template));
  });

  test('does not change with what CloudFormation updates in place', () => {
    expect(changed((t) => (t.Fleet.Properties.SpotFleetRequestConfigData.TargetCapacity = 3))).toBe(id(template));
    expect(changed((t) => (t.Fleet.Properties.Tags = []))).toBe(id(template));
    expect(changed((t) => (t.Subnet.Properties.MapPublicIpOnLaunch = false))).toBe(id(template));
    expect(changed((t) => (t.Vpc.Properties.EnableDnsSupport = false))).toBe(id(template));
    expect(changed((t) => (t.Role.Properties.AssumeRolePolicyDocument = { Statement: [{}] }))).toBe(id(template));
  });

  test('canonical JSON ignores key order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
  });
});
