import { Match } from 'aws-cdk-lib/assertions';
import { partOf, synthesizedDevWith, templateOf } from './support/synth';

const gpu = templateOf('dev', 'Gpu');
const only = (type: string) => {
  const found = gpu.findResources(type);
  expect(Object.keys(found)).toHaveLength(1);
  return Object.values(found)[0].Properties as Record<string, any>;
};
const fleetId = () => Object.keys(gpu.findResources('AWS::EC2::SpotFleet'))[0];

describe('network', () => {
  test('a VPC of public subnets in two AZs from Fn::GetAZs, no NAT gateway, an S3 gateway endpoint', () => {
    gpu.hasResourceProperties('AWS::EC2::VPC', { CidrBlock: '10.40.0.0/16' });
    gpu.resourceCountIs('AWS::EC2::Subnet', 2);
    gpu.allResourcesProperties('AWS::EC2::Subnet', {
      MapPublicIpOnLaunch: true,
      AvailabilityZone: { 'Fn::Select': [Match.anyValue(), { 'Fn::GetAZs': '' }] },
    });
    gpu.resourceCountIs('AWS::EC2::NatGateway', 0);
    gpu.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.s3']] },
    });
    gpu.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
  });

  test('the GPU security group admits only SSH (the gateway\'s encrypted link) from the VPS /32, and nothing on 8188', () => {
    const sg = Object.values(gpu.findResources('AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('^ComfyUI') } }));
    expect(sg).toHaveLength(1);
    expect(sg[0].Properties.SecurityGroupIngress).toEqual([
      { CidrIp: '203.0.113.10/32', Description: 'SSH link of the gateway on the orchestration VPS (port forwarding to ComfyUI only)', FromPort: 22, IpProtocol: 'tcp', ToPort: 22 },
    ]);
    gpu.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    expect(JSON.stringify(gpu.toJSON())).not.toMatch(/"FromPort":8188\b/);
  });
});

describe('launch template', () => {
  const data = () => only('AWS::EC2::LaunchTemplate').LaunchTemplateData;

  test('requires IMDSv2 with hop limit 1 (no credentials for the container) and exposes instance tags', () => {
    expect(data().MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' });
  });

  test('takes the AMI from the public DLAMI SSM parameter at deploy time (no AMI id in the template)', () => {
    const ref = data().ImageId.Ref as string;
    expect(gpu.toJSON().Parameters[ref]).toEqual({
      Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
      Default: '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id',
    });
    expect(JSON.stringify(gpu.toJSON())).not.toMatch(/ami-[0-9a-f]{8,}/);
  });

  test('has an encrypted 100 GB gp3 root volume, the instance profile, the security group and no instance type', () => {
    expect(data().BlockDeviceMappings).toEqual([
      { DeviceName: '/dev/sda1', Ebs: { DeleteOnTermination: true, Encrypted: true, VolumeSize: 100, VolumeType: 'gp3' } },
    ]);
    expect(data().IamInstanceProfile.Arn['Fn::GetAtt'][0]).toMatch(/^InstanceRoleInstanceProfile/);
    expect(data().SecurityGroupIds).toHaveLength(1);
    expect(data().InstanceType).toBeUndefined();
  });
});

describe('Spot Fleet', () => {
  const config = () => only('AWS::EC2::SpotFleet').SpotFleetRequestConfigData;

  test('maintain, terminate on interruption, price-capacity-optimized, starting at 0, never terminating on a lower target', () => {
    // noTermination: a lower target must not pick a busy box; idle boxes leave by themselves.
    expect(config()).toMatchObject({
      Type: 'maintain',
      InstanceInterruptionBehavior: 'terminate',
      AllocationStrategy: 'priceCapacityOptimized',
      TargetCapacity: 0,
      ExcessCapacityTerminationPolicy: 'noTermination',
    });
    expect(config().SpotPrice).toBeUndefined();
  });

  test('uses $Latest of the launch template and one override per instance type and subnet', () => {
    const [lt] = config().LaunchTemplateConfigs;
    expect(lt.LaunchTemplateSpecification).toEqual({ LaunchTemplateId: { Ref: expect.stringMatching(/^LaunchTemplate/) }, Version: '$Latest' });
    expect(lt.Overrides).toEqual([
      { InstanceType: 'g4dn.xlarge', SubnetId: { Ref: expect.stringMatching(/PublicSubnet1Subnet/) } },
      { InstanceType: 'g4dn.xlarge', SubnetId: { Ref: expect.stringMatching(/PublicSubnet2Subnet/) } },
    ]);
    const prod = templateOf('prod', 'Gpu').findResources('AWS::EC2::SpotFleet');
    const prodOverrides = Object.values(prod)[0].Properties.SpotFleetRequestConfigData.LaunchTemplateConfigs[0].Overrides;
    expect(prodOverrides.map((o: any) => o.InstanceType)).toEqual(['g4dn.xlarge', 'g4dn.xlarge', 'g5.xlarge', 'g5.xlarge', 'g6.xlarge', 'g6.xlarge']);
  });

  test('the fleet role is created by the stack: spotfleet principal, AmazonEC2SpotFleetTaggingRole', () => {
    const roleId = config().IamFleetRole['Fn::GetAtt'][0];
    expect(gpu.toJSON().Resources[roleId].Properties).toMatchObject({
      AssumeRolePolicyDocument: { Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'spotfleet.amazonaws.com' } }] },
      ManagedPolicyArns: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/service-role/AmazonEC2SpotFleetTaggingRole']] }],
    });
    // The managed policy's iam:PassRole is narrowed to the GPU instance role.
    const policies = Object.values(gpu.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles?.some((r: any) => r.Ref === roleId));
    expect(policies.flatMap((p: any) => p.Properties.PolicyDocument.Statement)).toEqual([
      {
        Sid: 'PassOnlyTheGpuRole',
        Effect: 'Deny',
        Action: 'iam:PassRole',
        NotResource: { 'Fn::GetAtt': [expect.stringMatching(/^InstanceRole/), 'Arn'] },
      },
    ]);
  });

  test('tags the fleet request; instances and volumes get the tags from the launch template', () => {
    expect(config().TagSpecifications).toEqual([
      {
        ResourceType: 'spot-fleet-request',
        Tags: [
          { Key: 'App', Value: 'AiAssets' },
          { Key: 'CostCenter', Value: 'AiAssets-dev' },
          { Key: 'Environment', Value: 'dev' },
        ],
      },
    ]);
    const specs = only('AWS::EC2::LaunchTemplate').LaunchTemplateData.TagSpecifications;
    expect(specs.map((s: any) => s.ResourceType)).toEqual(['instance', 'volume']);
    expect(specs[0].Tags).toEqual(expect.arrayContaining([{ Key: 'Name', Value: 'AiAssets-dev-comfyui' }, { Key: 'Environment', Value: 'dev' }]));
  });

  test('a max price from config caps the Spot price', () => {
    const capped = partOf(synthesizedDevWith((c) => (c.gpu = { maxSpotPriceUsd: 0.3 })), 'Gpu');
    capped.hasResourceProperties('AWS::EC2::SpotFleet', { SpotFleetRequestConfigData: Match.objectLike({ SpotPrice: '0.3000' }) });
  });

  test('a user-data change makes a new launch-template version but leaves the fleet untouched (no replacement)', () => {
    const changed = partOf(synthesizedDevWith((c) => (c.gpu = { idleMinutes: 30, bootGraceMinutes: 12 })), 'Gpu');
    const fleetOf = (t: typeof gpu) => Object.values(t.findResources('AWS::EC2::SpotFleet'))[0];
    const userDataOf = (t: typeof gpu) => JSON.stringify(Object.values(t.findResources('AWS::EC2::LaunchTemplate'))[0].Properties.LaunchTemplateData.UserData);
    expect(userDataOf(changed)).not.toEqual(userDataOf(gpu));
    expect(fleetOf(changed)).toEqual(fleetOf(gpu));
  });
});

describe('user data', () => {
  /** The rendered user data with every reference replaced by a realistic worst-case value. */
  function renderedUserData(): string {
    const userData = only('AWS::EC2::LaunchTemplate').LaunchTemplateData.UserData['Fn::Base64'];
    const [separator, parts] = userData['Fn::Join'];
    const values: Record<string, string> = { 'AWS::AccountId': '123456789012', 'AWS::Region': 'ap-southeast-2', 'AWS::URLSuffix': 'amazonaws.com' };
    return parts
      .map((p: any) => (typeof p === 'string' ? p : p.Ref ? values[p.Ref] ?? 'x'.repeat(64) : 'x'.repeat(64)))
      .join(separator);
  }

  test('is a short bootstrap, far below the 16 KB EC2 limit', () => {
    const bytes = Buffer.byteLength(renderedUserData(), 'utf8');
    expect(bytes).toBeLessThan(16 * 1024);
    expect(bytes).toBeLessThan(2 * 1024);
  });

  test('writes the host settings, fetches the versioned scripts and runs their installer', () => {
    const script = renderedUserData();
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    for (const line of [
      'ENV_NAME=dev',
      'COMFYUI_UID=1000',
      'IDLE_MINUTES=5',
      'IDLE_GPU_UTIL_PERCENT=5',
      'BOOT_GRACE_MINUTES=10',
      'METRIC_NAMESPACE=AiAssets/Gpu',
      'ASSET_BUCKET=aiassets-dev-assets-123456789012-ap-southeast-2',
    ]) {
      expect(script).toContain(`\n${line}\n`);
    }
    expect(script).toMatch(/aws s3 cp .* s3:\/\/\S+\/\S+\.zip \/opt\/comfyui\/bootstrap.zip/);
    expect(script).toContain('bash /opt/comfyui/bootstrap/install.sh');
    // The image is named and cached by the content hash of its build context (assets/comfyui/).
    const hash = script.match(/\nCOMFYUI_IMAGE_HASH=([0-9a-f]{64})\n/)?.[1];
    expect(hash).toBeDefined();
    expect(script).toContain(`\nCOMFYUI_IMAGE=aiassets/comfyui:${hash!.slice(0, 16)}\n`);
    expect(script).toMatch(new RegExp(`\nCOMFYUI_CONTEXT_URI=s3://\\S+/${hash}\\.zip\n`));
  });
});

describe('instance role additions for the GPU tier', () => {
  test('leaving the fleet: capacity of this fleet only, tags and termination only on its instances, two tag keys', () => {
    const policies = gpu.findResources('AWS::IAM::Policy', { Properties: { PolicyName: Match.stringLikeRegexp('IdleShutdown') } });
    const statements = Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
    const instances = { 'Fn::Join': ['', ['arn:aws:ec2:us-east-1:', { Ref: 'AWS::AccountId' }, ':instance/*']] };
    const ownFleet = { 'ec2:ResourceTag/aws:ec2spot:fleet-request-id': { Ref: fleetId() } };
    expect(statements).toEqual([
      {
        Sid: 'SetOwnFleetCapacity',
        Effect: 'Allow',
        Action: 'ec2:ModifySpotFleetRequest',
        Resource: {
          'Fn::Join': ['', ['arn:aws:ec2:us-east-1:', { Ref: 'AWS::AccountId' }, ':spot-fleet-request/', { Ref: fleetId() }]],
        },
      },
      { Sid: 'FindOwnFleetAndPeers', Effect: 'Allow', Action: ['ec2:DescribeSpotFleetInstances', 'ec2:DescribeTags'], Resource: '*' },
      {
        Sid: 'TagOwnFleetInstances',
        Effect: 'Allow',
        Action: 'ec2:CreateTags',
        Resource: instances,
        Condition: { StringEquals: ownFleet, 'ForAllValues:StringEquals': { 'aws:TagKeys': ['comfyui:leaving', 'comfyui:boot', 'comfyui:host-key'] } },
      },
      {
        Sid: 'UntagOwnFleetInstances',
        Effect: 'Allow',
        Action: 'ec2:DeleteTags',
        Resource: instances,
        Condition: { StringEquals: ownFleet, 'ForAllValues:StringEquals': { 'aws:TagKeys': ['comfyui:leaving'] }, Null: { 'aws:TagKeys': 'false' } },
      },
      { Sid: 'TerminateOwnFleetInstances', Effect: 'Allow', Action: 'ec2:TerminateInstances', Resource: instances, Condition: { StringEquals: ownFleet } },
    ]);
  });

  test('the instance may read exactly its bootstrap bundle and the image build context', () => {
    const statements = Object.values(gpu.findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement);
    const bootstrap = statements.find((s: any) => s.Sid === 'ReadBootstrapAssets');
    expect(bootstrap.Action).toBe('s3:GetObject');
    expect(bootstrap.Resource).toHaveLength(2);
    for (const resource of bootstrap.Resource) expect(JSON.stringify(resource)).toMatch(/\/[a-f0-9]{64}\.zip"/);
  });
});

describe('Spot interruption alerts', () => {
  test('a rule for interruption warnings and rebalance recommendations invokes the fleet filter', () => {
    gpu.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.ec2'], 'detail-type': ['EC2 Spot Instance Interruption Warning', 'EC2 Instance Rebalance Recommendation'] },
      State: 'ENABLED',
    });
    gpu.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Environment: { Variables: { FLEET_ID: { Ref: fleetId() }, ENV_NAME: 'dev', TOPIC_ARN: { Ref: Match.stringLikeRegexp('^AlertsTopic') } } },
    });
  });

  test('the alert topic is KMS-encrypted, TLS-only, and mails the configured address', () => {
    gpu.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertsKey'), 'Arn'] } });
    gpu.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    gpu.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    gpu.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
  });
});

describe('host log group and alert key (teardown then redeploy; confused deputy)', () => {
  test('the host settings name the host log group the stack created (its name carries the stack id)', () => {
    const [logicalId] = Object.keys(gpu.findResources('AWS::Logs::LogGroup', { Properties: { LogGroupName: Match.objectLike({ 'Fn::Join': Match.anyValue() }) } }));
    expect(logicalId).toMatch(/^BootstrapHostLogs/);
    const [, parts] = only('AWS::EC2::LaunchTemplate').LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'];
    const at = parts.findIndex((p: unknown) => typeof p === 'string' && p.endsWith('\nLOG_GROUP='));
    expect(parts[at + 1]).toEqual({ Ref: logicalId });
    gpu.hasOutput('HostLogGroup', { Value: { Ref: logicalId } });
  });

  test("CloudWatch alarms may use the alert key only from this stack's account (aws:SourceAccount)", () => {
    const [key] = Object.values(gpu.findResources('AWS::KMS::Key'));
    const statement = key.Properties.KeyPolicy.Statement.find((s: any) => s.Sid === 'AllowCloudWatchAlarms');
    expect(statement).toMatchObject({
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
  });
});

test('outputs name what the ops commands need', () => {
  gpu.hasOutput('SpotFleetRequestId', { Value: { Ref: fleetId() } });
  gpu.hasOutput('AlertTopicArn', {});
  gpu.hasOutput('ComfyUiPort', { Value: '8188' });
  // The gateway's control path and what `gpu status` / `gpu start` budget with (test/gpu-control/template.test.ts has the details).
  for (const output of ['GpuControlFunctionName', 'GatewayCredentialSecretArn', 'GpuAllowanceUsd', 'GpuSpotPricesUsd']) gpu.hasOutput(output, {});
});
