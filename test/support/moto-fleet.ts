import {
  CreateLaunchTemplateCommand,
  DescribeImagesCommand,
  DescribeSubnetsCommand,
  EC2Client,
  RequestSpotFleetCommand,
} from '@aws-sdk/client-ec2';

/** The Spot Fleet the Gpu stack would create (moto's CloudFormation cannot build one from a launch template). */
export async function createFleet(ec2: EC2Client, targetCapacity: number): Promise<string> {
  const ami = (await ec2.send(new DescribeImagesCommand({}))).Images![0].ImageId!;
  const subnet = (await ec2.send(new DescribeSubnetsCommand({}))).Subnets![0].SubnetId!;
  const lt = await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `gpu-${Date.now()}`, LaunchTemplateData: { ImageId: ami } }));
  const fleet = await ec2.send(
    new RequestSpotFleetCommand({
      SpotFleetRequestConfig: {
        IamFleetRole: 'arn:aws:iam::123456789012:role/fleet',
        TargetCapacity: targetCapacity,
        Type: 'maintain',
        AllocationStrategy: 'priceCapacityOptimized',
        LaunchTemplateConfigs: [
          {
            LaunchTemplateSpecification: { LaunchTemplateId: lt.LaunchTemplate!.LaunchTemplateId, Version: '$Latest' },
            Overrides: [{ InstanceType: 'g4dn.xlarge', SubnetId: subnet }],
          },
        ],
      },
    }),
  );
  return fleet.SpotFleetRequestId!;
}
