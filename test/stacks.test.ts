import { spawnSync } from 'node:child_process';
import { ENVS, synthesized } from './support/synth';

/** Resource types CloudFormation cannot tag (no Tags property); everything else must carry our tags. */
const UNTAGGABLE = new Set([
  'AWS::CDK::Metadata',
  'AWS::S3::BucketPolicy',
  'AWS::IAM::Policy',
  'AWS::IAM::InstanceProfile',
  'AWS::IAM::AccessKey',
  'AWS::EC2::Route',
  'AWS::EC2::SubnetRouteTableAssociation',
  'AWS::EC2::VPCGatewayAttachment',
  'AWS::Lambda::Permission',
  'AWS::SNS::Subscription',
  'AWS::SNS::TopicPolicy',
  'AWS::SQS::QueuePolicy',
  'Custom::S3AutoDeleteObjects',
  'Custom::VpcRestrictDefaultSG',
  'AWS::CloudWatch::Dashboard', // see lib/tagging.ts
  'AWS::CloudWatch::Alarm', // tags are not used for alarm billing; CDK does not render them
  'AWS::Budgets::Budget',
  'Custom::VpsDeployment',
]);

/** Where a resource keeps its tags: most in Tags (a list, or a map for SSM parameters); launch templates and fleets in TagSpecifications. */
function tagsOf(resource: { Type: string; Properties?: Record<string, any> }): unknown {
  const p = resource.Properties ?? {};
  if (resource.Type === 'AWS::EC2::LaunchTemplate') return p.TagSpecifications?.[0]?.Tags;
  if (resource.Type === 'AWS::EC2::SpotFleet') return p.SpotFleetRequestConfigData?.TagSpecifications?.[0]?.Tags;
  // Some types (SSM parameters) take tags as a key-value map.
  if (p.Tags && !Array.isArray(p.Tags)) return Object.entries(p.Tags).map(([Key, Value]) => ({ Key, Value }));
  return p.Tags;
}

describe.each(ENVS)('%s stacks', (envName) => {
  test('are named <App>-<env>-<Part>', () => {
    expect(Object.keys(synthesized(envName).templates)).toEqual([
      `AiAssets-${envName}-Storage`,
      `AiAssets-${envName}-Gpu`,
      `AiAssets-${envName}-Observability`,
      `AiAssets-${envName}-Vps`,
    ]);
  });

  test('tag every taggable resource with the app, the environment and the cost-allocation tag', () => {
    const expected = [
      { Key: 'App', Value: 'AiAssets' },
      { Key: 'CostCenter', Value: `AiAssets-${envName}` },
      { Key: 'Environment', Value: envName },
    ];
    let checked = 0;
    for (const template of Object.values(synthesized(envName).templates)) {
      for (const [id, resource] of Object.entries(template.Resources)) {
        if (UNTAGGABLE.has(resource.Type)) continue;
        checked += 1;
        expect({ id, tags: tagsOf(resource) }).toEqual({ id, tags: expect.arrayContaining(expected) });
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });
});

describe('the CDK app entry point (what `cdk synth -c env=<name>` runs)', () => {
  const run = (context: object) =>
    spawnSync('npx', ['tsx', 'bin/app.ts'], {
      encoding: 'utf8',
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify(context), CDK_OUTDIR: synthesized('dev').outdir + '-cli' },
    });

  test('rejects an unknown environment with the allowed names and a non-zero exit', () => {
    const result = run({ env: 'qa' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Unknown environment "qa" (from -c env=qa); allowed: dev, staging, prod.');
  });
});
