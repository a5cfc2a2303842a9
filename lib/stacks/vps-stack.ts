import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/load';
import { VpsDeployment } from '../vps-deployment';

export interface VpsStackProps extends StackProps {
  readonly config: EnvironmentConfig;
}

/** The companion stack that owns the VPS deployment, so cdk diff/deploy/destroy cover the VPS too. */
export class VpsStack extends Stack {
  readonly deployment: VpsDeployment;

  constructor(scope: Construct, id: string, props: VpsStackProps) {
    super(scope, id, props);
    this.deployment = new VpsDeployment(this, 'Vps', { config: props.config });
    new CfnOutput(this, 'VpsRelease', { value: this.deployment.release });
    new CfnOutput(this, 'VpsHost', { value: props.config.vps.host });
    new CfnOutput(this, 'AppSecretsArn', { value: this.deployment.appSecrets.secretArn });
  }
}
