import type { EnvironmentConfig } from './config/load';

/**
 * Names of the GPU control path that the Gpu stack creates and the Vps stack uses. Fixed names,
 * not cross-stack exports, so either stack can be replaced on its own (see assetBucketName).
 */
type Names = Pick<EnvironmentConfig, 'appName' | 'envName'>;

/** The control function the gateway invokes (lib/gpu-control.ts). */
export function gpuControlFunctionName(config: Names): string {
  return `${config.appName}-${config.envName}-gpu-control`;
}

/** The Secrets Manager secret holding the gateway's access key ({accessKeyId, secretAccessKey}). */
export function gatewayCredentialSecretName(config: Names): string {
  return `${config.appName}/${config.envName}/gateway-aws-credential`;
}
