import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { AUTO_STOP_DEFAULT, autoStopParameterName } from './gpu-auto-stop-names';
import type { GpuInstanceRole } from './gpu-instance-role';

export interface GpuAutoStopSettingProps {
  readonly names: { readonly appName: string; readonly envName: string };
  /** The GPU boxes' role, allowed to read the parameter (and nothing else of Parameter Store). */
  readonly instanceRole: GpuInstanceRole;
}

/**
 * The environment's run-time idle threshold (`npm run ops -- gpu autostop`), read by every box's
 * idle watcher each minute. Created with the constant `default`: CloudFormation updates a resource
 * only when its template properties change, so a deploy never resets a value an operator set.
 */
export class GpuAutoStopSetting extends Construct {
  readonly parameter: ssm.StringParameter;
  /** The literal name (not a token), for the host settings: AUTO_STOP_PARAMETER. */
  readonly parameterName: string;

  constructor(scope: Construct, id: string, props: GpuAutoStopSettingProps) {
    super(scope, id);
    this.parameterName = autoStopParameterName(props.names);
    this.parameter = new ssm.StringParameter(this, 'Parameter', {
      parameterName: this.parameterName,
      stringValue: AUTO_STOP_DEFAULT,
      description: 'Idle minutes (1-1440) after which a GPU box leaves its fleet, or "default" for gpu.idleMinutes; set with ops gpu autostop',
    });
    props.instanceRole.allowAutoStopRead(this.parameterName);
  }
}
