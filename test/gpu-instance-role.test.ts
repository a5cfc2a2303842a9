import { Match } from 'aws-cdk-lib/assertions';
import { templateOf } from './support/synth';

const BUCKET_ARN = ['arn:aws:s3:::aiassets-dev-assets-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }];
const objects = (prefix: string) => ({ 'Fn::Join': ['', [...BUCKET_ARN, `/${prefix}*`]] });

describe('GPU instance role', () => {
  const gpu = templateOf('dev', 'Gpu');

  test('is assumable by EC2 only and has no managed policy (everything inline and scoped)', () => {
    gpu.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' } }],
      },
      ManagedPolicyArns: Match.absent(),
      Description: Match.stringLikeRegexp('^GPU instances'),
    });
  });

  const statements = (): any[] => {
    const policies = gpu.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^InstanceRole') }] },
    });
    return Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
  };
  const ownAccount = { StringEquals: { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } } };

  test('reads models/ and workflows/, only writes generated/, reads and writes the image cache, lists only those prefixes, deletes nothing, all in its own account', () => {
    const s3 = statements().filter((s: any) => /^(ListOwnPrefixes|ReadModelsAndWorkflows|WriteGenerated|ImageCache)$/.test(s.Sid));
    expect(s3).toEqual([
      {
        Sid: 'ListOwnPrefixes',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: { 'Fn::Join': ['', BUCKET_ARN] },
        Condition: { StringLike: { 's3:prefix': ['models/*', 'workflows/*', 'generated/*', 'cache/comfyui/*'] }, ...ownAccount },
      },
      { Sid: 'ReadModelsAndWorkflows', Effect: 'Allow', Action: 's3:GetObject', Resource: [objects('models/'), objects('workflows/')], Condition: ownAccount },
      { Sid: 'WriteGenerated', Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:PutObject'], Resource: objects('generated/'), Condition: ownAccount },
      {
        Sid: 'ImageCache',
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
        Resource: objects('cache/comfyui/'),
        Condition: ownAccount,
      },
    ]);
    expect(JSON.stringify(statements())).not.toMatch(/"s3:\*"|s3:Delete|"logs:\*"/);
  });

  test("reads exactly two SSM parameters: the gateway's SSH public key (its link) and the run-time auto-stop minutes", () => {
    const ssm = statements().filter((s: any) => JSON.stringify(s).includes('ssm:GetParameter'));
    const parameterArn = (name: string) => ({ 'Fn::Join': ['', ['arn:aws:ssm:us-east-1:', { Ref: 'AWS::AccountId' }, `:parameter/AiAssets/dev/gpu/${name}`]] });
    expect(ssm).toEqual([
      { Sid: 'ReadLinkKey', Effect: 'Allow', Action: 'ssm:GetParameter', Resource: parameterArn('link-public-key') },
      { Sid: 'ReadAutoStopMinutes', Effect: 'Allow', Action: 'ssm:GetParameter', Resource: parameterArn('auto-stop-minutes') },
    ]);
    const userData = JSON.stringify(Object.values(gpu.findResources('AWS::EC2::LaunchTemplate'))[0].Properties.LaunchTemplateData.UserData);
    expect(userData).toContain('LINK_KEY_PARAMETER=/AiAssets/dev/gpu/link-public-key\\n');
    expect(userData).toContain('AUTO_STOP_PARAMETER=/AiAssets/dev/gpu/auto-stop-minutes\\n');
    // Created with the constant "default" (gpu.idleMinutes), so a deploy never resets an operator's value.
    gpu.hasResourceProperties('AWS::SSM::Parameter', { Name: '/AiAssets/dev/gpu/auto-stop-minutes', Type: 'String', Value: 'default' });
  });

  test('Session Manager, host logs into its one log group and metrics into two namespaces only', () => {
    const bySid = Object.fromEntries(statements().map((s: any) => [s.Sid, s]));
    expect(bySid.SessionManager).toEqual({
      Sid: 'SessionManager',
      Effect: 'Allow',
      Action: ['ssm:UpdateInstanceInformation', 'ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel', 'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel'],
      Resource: '*',
    });
    expect(bySid.HostLogs.Resource).toEqual([
      { 'Fn::GetAtt': [expect.stringMatching(/^BootstrapHostLogs/), 'Arn'] },
      expect.objectContaining({ 'Fn::Join': ['', expect.arrayContaining([expect.stringContaining(':log-group:')])] }),
    ]);
    expect(bySid.HostMetrics).toMatchObject({
      Action: 'cloudwatch:PutMetricData',
      Resource: '*',
      Condition: { StringEquals: { 'cloudwatch:namespace': ['CWAgent', 'AiAssets/Gpu'] } },
    });
  });

  test('has an instance profile for the launch template', () => {
    gpu.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: Match.stringLikeRegexp('^InstanceRole') }] });
  });
});
