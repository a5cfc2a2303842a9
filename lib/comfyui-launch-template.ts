import { Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface ComfyUiLaunchTemplateProps {
  /** Public SSM parameter of the Deep Learning AMI, resolved by CloudFormation at deploy time. */
  readonly amiParameter: string;
  readonly rootVolumeGb: number;
  readonly instanceProfile: iam.IInstanceProfile;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly userData: ec2.UserData;
  /** Name tag of the instances and volumes, e.g. AiAssets-dev-comfyui. */
  readonly name: string;
}

/**
 * The launch template of the GPU instances. No instance type here: the Spot
 * Fleet sets one per override. Any change yields a new template version, which
 * the fleet picks up as `$Latest` without being replaced.
 */
export class ComfyUiLaunchTemplate extends Construct {
  readonly launchTemplate: ec2.LaunchTemplate;

  constructor(scope: Construct, id: string, props: ComfyUiLaunchTemplateProps) {
    super(scope, id);
    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.fromSsmParameter(props.amiParameter, { os: ec2.OperatingSystemType.LINUX }),
      userData: props.userData,
      instanceProfile: props.instanceProfile,
      securityGroup: props.securityGroup,
      // IMDSv2 only, hop limit 1: only the host's own processes (sync, watcher, agent) need
      // metadata; the ComfyUI container (one more hop) must not reach the role's credentials.
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: true,
      blockDevices: [
        {
          // The Ubuntu DLAMI's root device.
          deviceName: '/dev/sda1',
          volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGb, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    Tags.of(this.launchTemplate).add('Name', props.name);
  }
}
