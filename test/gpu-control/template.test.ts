import { Match } from 'aws-cdk-lib/assertions';
import { ASSET_PREFIXES } from '../../lib/asset-bucket';
import { loadEnvironment } from '../../lib/config/load';
import { gpuAllowance } from '../../lib/cost/gpu-allowance';
import { MODELS_PREFIX, WORKFLOWS_PREFIX } from '../../lib/gpu-control/bucket-listings';
import { partOf, synthesized, synthesizedDevWith, templateOf } from '../support/synth';

// The GpuControl construct as the dev Gpu stack synthesizes it.
const gpu = templateOf('dev', 'Gpu');
const resources = () => gpu.toJSON().Resources as Record<string, { Type: string; Properties: any }>;
const idOf = (type: string, match: (p: any) => boolean = () => true): string => {
  const ids = Object.entries(resources()).filter(([, r]) => r.Type === type && match(r.Properties)).map(([id]) => id);
  expect(ids).toHaveLength(1);
  return ids[0];
};
const controlFunction = () => idOf('AWS::Lambda::Function', (p) => p.FunctionName === 'AiAssets-dev-gpu-control');
const variables = () => resources()[controlFunction()].Properties.Environment.Variables;

test('the function has its fixed name, the latest runtime and every setting', () => {
  const fleet = idOf('AWS::EC2::SpotFleet');
  expect(resources()[controlFunction()].Properties.Runtime).toBe('nodejs24.x');
  expect(variables()).toEqual({
    APP_NAME: 'AiAssets',
    ENV_NAME: 'dev',
    FLEET_ID: { Ref: fleet },
    MAX_INSTANCES: '1',
    ASSET_BUCKET: { 'Fn::Join': ['', ['aiassets-dev-assets-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]] },
    GPU_ALLOWANCE_USD: expect.stringMatching(/^\d+(\.\d{1,2})?$/),
    // Spot $0.1766 + the 100 GiB gp3 root volume ($8 / 729.6 h) + the public IPv4 address ($0.005): what an hour bills.
    GPU_SPOT_PRICES_USD: '{"g4dn.xlarge":0.192565}',
  });
});

test('the allowance it carries is monthlyBudgetUsd minus the estimate of these very templates at 0 GPU hours', () => {
  const config = loadEnvironment('dev');
  const measured = gpuAllowance(config, synthesized('dev').templates);
  expect(Number(variables().GPU_ALLOWANCE_USD)).toBe(measured.allowanceUsd);
  expect(measured.allowanceUsd).toBeCloseTo(config.monthlyBudgetUsd - measured.floorUsd, 2);
  // The floor holds at least the VPS and is far below the budget for the shipped config.
  expect(measured.floorUsd).toBeGreaterThan(config.vps.monthlyPriceUsd);
  expect(measured.allowanceUsd).toBeGreaterThan(0);
  gpu.hasOutput('GpuAllowanceUsd', { Value: variables().GPU_ALLOWANCE_USD });
  gpu.hasOutput('GpuSpotPricesUsd', { Value: '{"g4dn.xlarge":0.192565}' });
});

test('gpu.maxInstances reaches the function', () => {
  const variant = partOf(synthesizedDevWith((c) => (c.gpu = { ...c.gpu, maxInstances: 3 })), 'Gpu');
  variant.hasResourceProperties('AWS::Lambda::Function', {
    FunctionName: 'AiAssets-dev-gpu-control',
    Environment: { Variables: Match.objectLike({ MAX_INSTANCES: '3' }) },
  });
});

test("the function's role: this fleet's capacity, its instances' two tag keys, the two parameters, the gateway namespace, models/ and workflows/", () => {
  const fleet = idOf('AWS::EC2::SpotFleet');
  const role = resources()[controlFunction()].Properties.Role['Fn::GetAtt'][0];
  const policy = idOf('AWS::IAM::Policy', (p) => p.Roles?.some((r: any) => r.Ref === role));
  const statements = resources()[policy].Properties.PolicyDocument.Statement.filter((s: any) => s.Sid);
  const bySid = Object.fromEntries(statements.map((s: any) => [s.Sid, s]));
  const linkKey = idOf('AWS::SSM::Parameter', (p) => p.Name === '/AiAssets/dev/gpu/link-public-key');
  const override = idOf('AWS::SSM::Parameter', (p) => p.Name === '/AiAssets/dev/gpu/budget-override');
  const bucketArn = { 'Fn::Join': ['', ['arn:aws:s3:::aiassets-dev-assets-', { Ref: 'AWS::AccountId' }, '-', { Ref: 'AWS::Region' }]] };
  const ownAccount = { 's3:ResourceAccount': { Ref: 'AWS::AccountId' } };
  expect(Object.keys(bySid).sort()).toEqual(
    ['GatewayMetrics', 'ListModelsAndWorkflows', 'ReadBudgetOverride', 'ReadFleet', 'ReadLedger', 'ReadWorkflows', 'SetOwnFleetCapacity', 'TagOwnFleetInstances', 'WriteLinkKey'].sort(),
  );
  expect(bySid.SetOwnFleetCapacity).toMatchObject({
    Action: 'ec2:ModifySpotFleetRequest',
    Resource: { 'Fn::Join': ['', ['arn:aws:ec2:us-east-1:', { Ref: 'AWS::AccountId' }, ':spot-fleet-request/', { Ref: fleet }]] },
  });
  expect(bySid.ReadFleet).toMatchObject({ Action: ['ec2:DescribeInstances', 'ec2:DescribeSpotFleetInstances', 'ec2:DescribeSpotFleetRequests'], Resource: '*' });
  expect(bySid.TagOwnFleetInstances).toMatchObject({
    Action: 'ec2:CreateTags',
    Condition: {
      StringEquals: { 'ec2:ResourceTag/aws:ec2spot:fleet-request-id': { Ref: fleet } },
      'ForAllValues:StringEquals': { 'aws:TagKeys': ['comfyui:busy-until', 'comfyui:billed'] },
    },
  });
  expect(bySid.WriteLinkKey).toMatchObject({ Action: 'ssm:PutParameter', Resource: expect.objectContaining({ 'Fn::Join': expect.arrayContaining([expect.arrayContaining([{ Ref: linkKey }])]) }) });
  expect(bySid.ReadBudgetOverride).toMatchObject({ Action: 'ssm:GetParameter', Resource: expect.objectContaining({ 'Fn::Join': expect.arrayContaining([expect.arrayContaining([{ Ref: override }])]) }) });
  expect(bySid.GatewayMetrics).toMatchObject({ Action: 'cloudwatch:PutMetricData', Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': 'AiAssets/Gateway' } } });
  expect(bySid.ReadLedger).toMatchObject({ Action: 'cloudwatch:GetMetricData', Resource: '*' });
  expect(bySid.ListModelsAndWorkflows).toMatchObject({
    Action: 's3:ListBucket',
    Resource: bucketArn,
    Condition: { StringLike: { 's3:prefix': ['models/*', 'workflows/*'] }, StringEquals: ownAccount },
  });
  expect(bySid.ReadWorkflows).toMatchObject({ Action: 's3:GetObject', Condition: { StringEquals: ownAccount } });
  expect(JSON.stringify(bySid.ReadWorkflows.Resource)).toContain('/workflows/*');
  // No write, delete or terminate anywhere.
  const actions = statements.flatMap((s: any) => [s.Action].flat());
  expect(actions.filter((a: string) => /Terminate|Delete|PutObject|RunInstances|PassRole/.test(a))).toEqual([]);
});

test('the listing prefixes are the asset bucket\'s', () => {
  expect([MODELS_PREFIX, WORKFLOWS_PREFIX]).toEqual([ASSET_PREFIXES.models, ASSET_PREFIXES.workflows]);
});

test('EC2 state changes to shutting-down and stopping invoke the function (the ledger)', () => {
  gpu.hasResourceProperties('AWS::Events::Rule', {
    EventPattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'], detail: { state: ['shutting-down', 'stopping'] } },
    Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [controlFunction(), 'Arn'] } })],
  });
});

test('the two parameters start as unset and none', () => {
  gpu.hasResourceProperties('AWS::SSM::Parameter', { Name: '/AiAssets/dev/gpu/link-public-key', Type: 'String', Value: 'unset' });
  gpu.hasResourceProperties('AWS::SSM::Parameter', { Name: '/AiAssets/dev/gpu/budget-override', Type: 'String', Value: 'none' });
});

test('the VPS user may invoke this function and nothing else', () => {
  const user = idOf('AWS::IAM::User');
  const props = resources()[user].Properties;
  expect(props.Policies).toBeUndefined();
  expect(props.ManagedPolicyArns).toBeUndefined();
  expect(props.Groups).toBeUndefined();
  // Every policy in any template that names the user.
  const all = Object.values(synthesized('dev').templates).flatMap((t) => Object.values(t.Resources));
  const attached = all.filter((r) => JSON.stringify(r.Properties ?? {}).includes(`"Ref":"${user}"`) && r.Type !== 'AWS::IAM::AccessKey');
  expect(attached.map((r) => r.Type)).toEqual(['AWS::IAM::Policy']);
  expect((attached[0].Properties as any).PolicyDocument.Statement).toEqual([
    { Sid: 'InvokeGpuControlOnly', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [controlFunction(), 'Arn'] } },
  ]);
  expect(all.filter((r) => r.Type === 'AWS::IAM::UserToGroupAddition' || r.Type === 'AWS::IAM::ManagedPolicy')).toEqual([]);
});

test('the access key reaches its secret by reference only: no key value in any template', () => {
  const key = idOf('AWS::IAM::AccessKey');
  const secret = idOf('AWS::SecretsManager::Secret');
  expect(resources()[secret].Properties).toMatchObject({ Name: 'AiAssets/dev/gateway-aws-credential' });
  expect(resources()[secret].Properties.SecretString).toEqual({
    'Fn::Join': ['', ['{"accessKeyId":"', { Ref: key }, '","secretAccessKey":"', { 'Fn::GetAtt': [key, 'SecretAccessKey'] }, '"}']],
  });
  expect(resources()[secret].Properties.GenerateSecretString).toBeUndefined();
  const text = JSON.stringify(synthesized('dev').templates);
  // The only uses of the secret attribute are that one reference.
  expect(text.match(/"SecretAccessKey"/g)).toHaveLength(1);
  expect(text).not.toMatch(/AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}/);
  gpu.hasOutput('GatewayCredentialSecretArn', { Value: { Ref: secret } });
  gpu.hasOutput('GpuControlFunctionName', { Value: { Ref: controlFunction() } });
});
