import { Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { COMFYUI_CONTAINER_PORT } from './comfyui-image';
import { removalPolicyOf, type RemovalSetting } from './removal';

/**
 * ComfyUI's HTTP port on the box: the container's port, published on the loopback only under the
 * same number (the gateway's SSH link forwards to it; assets/gateway/gpu-link.ts).
 */
export const COMFYUI_PORT = COMFYUI_CONTAINER_PORT;

/** The gateway's encrypted link to ComfyUI: SSH port forwarding (assets/user-data/link-access.sh). */
const LINK_SSH_PORT = 22;

export interface GpuNetworkProps {
  readonly vpcCidr: string;
  /** How many AZs (one public subnet each); taken from Fn::GetAZs at deploy time, so synth needs no lookup. */
  readonly azCount: number;
  /** The only source allowed to reach the GPU: SSH for the gateway's link (the VPS, as a /32). */
  readonly comfyuiIngressCidr: string;
  readonly removalPolicy: RemovalSetting;
}

/**
 * A small VPC for the GPU: public subnets only (no NAT gateway, about $33 a
 * month saved), an S3 gateway endpoint (model sync without data-transfer
 * charges), rejected-traffic flow logs, and the GPU security group: SSH from the
 * VPS address only, for the gateway's encrypted link (ComfyUI itself listens on the box's loopback).
 */
export class GpuNetwork extends Construct {
  readonly vpc: ec2.Vpc;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: GpuNetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.vpcCidr),
      availabilityZones: Array.from({ length: props.azCount }, (_, i) => Fn.select(i, Fn.getAzs())),
      natGateways: 0,
      subnetConfiguration: [{ name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24, mapPublicIpOnLaunch: true }],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    const flowLogGroup = new logs.LogGroup(this, 'RejectedFlows', {
      retention: logs.RetentionDays.TWO_WEEKS,
      removalPolicy: removalPolicyOf(props.removalPolicy),
    });
    // Rejected traffic only: the audit trail of what the security group turned away, at negligible ingest cost.
    this.vpc.addFlowLog('RejectedTraffic', {
      trafficType: ec2.FlowLogTrafficType.REJECT,
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'GpuSecurityGroup', {
      vpc: this.vpc,
      // EC2 allows no apostrophe in either description.
      description: `ComfyUI GPU: ${LINK_SSH_PORT}/tcp from the VPS only, the SSH link of the gateway to ComfyUI on the loopback`,
      allowAllOutbound: true,
    });
    this.securityGroup.addIngressRule(
      ec2.Peer.ipv4(props.comfyuiIngressCidr),
      ec2.Port.tcp(LINK_SSH_PORT),
      'SSH link of the gateway on the orchestration VPS (port forwarding to ComfyUI only)',
    );
  }
}
