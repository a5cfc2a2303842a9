import { Match } from 'aws-cdk-lib/assertions';
import { templateOf } from './support/synth';

const BUCKET_ARN = ['arn:aws:s3:::aiassets-dev-assets-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }];
const objects = (prefix: string) => ({ 'Fn::Join': ['', [...BUCKET_ARN, `/${prefix}*`]] });

describe('GPU instance role', () => {
  const gpu = templateOf('dev', 'Gpu');

  test('is assumable by EC2 only, with the SSM core and CloudWatch agent managed policies', () => {
    gpu.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' } }],
      },
      ManagedPolicyArns: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/CloudWatchAgentServerPolicy']] },
      ],
    });
  });

  test('reads models/ and workflows/, reads and writes generated/, lists only those prefixes, deletes nothing', () => {
    const policies = gpu.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^InstanceRole') }] },
    });
    const statements = Object.values(policies)
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((s: any) => !['ReadBootstrapScripts', 'ScaleOwnFleetToZero', 'FindOwnFleet'].includes(s.Sid)); // GPU-stack tests
    expect(statements).toEqual([
      {
        Sid: 'ListOwnPrefixes',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::Join': ['', BUCKET_ARN] },
        Condition: { StringLike: { 's3:prefix': ['models/*', 'workflows/*', 'generated/*'] } },
      },
      { Sid: 'ReadModelsAndWorkflows', Effect: 'Allow', Action: 's3:GetObject', Resource: [objects('models/'), objects('workflows/')] },
      {
        Sid: 'ReadWriteGenerated',
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
        Resource: objects('generated/'),
      },
    ]);
    expect(JSON.stringify(statements)).not.toMatch(/"s3:\*"|s3:Delete|"Resource":"\*"/);
  });

  test('has an instance profile for the launch template', () => {
    gpu.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: Match.stringLikeRegexp('^InstanceRole') }] });
  });
});
