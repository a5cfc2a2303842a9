import { Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledge, managedPolicyFinding } from './nag';

export interface GpuSpotFleetProps {
  readonly launchTemplate: ec2.LaunchTemplate;
  /** The instances' role: the only one the fleet role may pass. */
  readonly instanceRole: iam.IRole;
  readonly instanceTypes: string[];
  readonly subnets: ec2.ISubnet[];
  /** Target capacity at creation. The template never changes it afterwards unless this value changes. */
  readonly initialCapacity: number;
  readonly maxSpotPriceUsd?: number;
  /** Tags of the fleet request itself (instance tags come from the launch template). */
  readonly tags: Record<string, string>;
}

/**
 * The Spot Fleet that runs the GPU: `maintain`, so its capacity can be changed
 * at run time (ModifySpotFleetRequest works only on maintain fleets).
 *
 * Interrupted instances terminate: every wake starts a fresh instance from the
 * image cache anyway, and a stopped one would keep its root volume billing while
 * the fleet launches a replacement elsewhere (EC2 User Guide, "Stop interrupted
 * Spot Instances"). Lowering the target never terminates anything
 * (`noTermination`): an idle box removes only itself (idle-watcher.sh), and
 * `gpu stop` asks for termination explicitly when it scales the whole fleet to 0.
 *
 * CloudFormation replaces a Spot Fleet (terminating its instances) on any
 * change except TargetCapacity, ExcessCapacityTerminationPolicy and Context;
 * the README lists what that means in config terms.
 */
export class GpuSpotFleet extends Construct {
  readonly fleet: ec2.CfnSpotFleet;
  readonly fleetRole: iam.Role;

  constructor(scope: Construct, id: string, props: GpuSpotFleetProps) {
    super(scope, id);
    this.fleetRole = new iam.Role(this, 'FleetRole', {
      assumedBy: new iam.ServicePrincipal('spotfleet.amazonaws.com'),
      description: 'Lets Spot Fleet launch, tag and terminate the GPU instances',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonEC2SpotFleetTaggingRole')],
    });
    // The managed policy lets the fleet pass any role to EC2; whoever may use this fleet role
    // could then launch instances with any role of the account. Only the GPU role is needed.
    this.fleetRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PassOnlyTheGpuRole',
        effect: iam.Effect.DENY,
        actions: ['iam:PassRole'],
        notResources: [props.instanceRole.roleArn],
      }),
    );
    acknowledge(this.fleetRole, {
      id: managedPolicyFinding('service-role/AmazonEC2SpotFleetTaggingRole'),
      reason:
        'The AWS-documented policy for a Spot Fleet role: the fleet must run, tag and terminate instances it has not created yet; its iam:PassRole is narrowed to the GPU role by an explicit deny.',
    });

    const overrides = props.instanceTypes.flatMap((instanceType) =>
      props.subnets.map((subnet) => ({ instanceType, subnetId: subnet.subnetId })),
    );
    this.fleet = new ec2.CfnSpotFleet(this, 'Fleet', {
      spotFleetRequestConfigData: {
        type: 'maintain',
        iamFleetRole: this.fleetRole.roleArn,
        allocationStrategy: 'priceCapacityOptimized',
        instanceInterruptionBehavior: 'terminate',
        targetCapacity: props.initialCapacity,
        excessCapacityTerminationPolicy: 'noTermination',
        spotPrice: props.maxSpotPriceUsd?.toFixed(4),
        launchTemplateConfigs: [
          {
            // `$Latest`, not a version number: a new template version (user data, AMI) must not replace the fleet.
            launchTemplateSpecification: { launchTemplateId: props.launchTemplate.launchTemplateId, version: '$Latest' },
            overrides,
          },
        ],
        tagSpecifications: [
          {
            resourceType: 'spot-fleet-request',
            tags: Object.entries(props.tags)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([key, value]) => ({ key, value })),
          },
        ],
      },
    });
  }

  /** The fleet request's ARN, for policies scoped to this fleet only. */
  get fleetArn(): string {
    return spotFleetRequestArn(this, this.fleet.ref);
  }
}

/** The ARN of a Spot Fleet request in the scope's account and region (what IAM policies name). */
export function spotFleetRequestArn(scope: Construct, fleetId: string): string {
  return Stack.of(scope).formatArn({ service: 'ec2', resource: 'spot-fleet-request', resourceName: fleetId });
}
