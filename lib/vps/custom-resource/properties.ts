/**
 * The custom resource's properties as CloudFormation passes them (every value
 * a string). They name the bundle, the host, the pinned fingerprint and the
 * ARNs of the secrets; never a secret value.
 */
export interface VpsResourceProperties {
  AppName: string;
  EnvName: string;
  Host: string;
  Port: string;
  User: string;
  HostKeySha256: string;
  BundleHash: string;
  BundleBucket: string;
  BundleKey: string;
  SshKeySecretArn: string;
  AppSecretsArn: string;
  /** Names of the `.env` entries the bundle needs, derived from the app secret's seed. */
  SecretNames: string[];
  /** The Gpu stack's secret with the gateway's access key (written to `.env`, never derived). */
  GatewayCredentialSecretArn: string;
  BaseDir: string;
  KeepReleases: string;
  ConvergeTimeoutSeconds: string;
  /** "true" when the environment's removal policy is destroy: teardown also removes named volumes. */
  RemoveVolumesOnDelete: string;
}

/** CloudFormation type of the VPS deployment resource. */
export const VPS_DEPLOYMENT_TYPE = 'Custom::VpsDeployment';

/**
 * The properties the physical ID is made of: a change returns a new ID, and
 * CloudFormation then deletes the old resource, which tears down the old host's deployment.
 */
export const VPS_IDENTITY_PROPERTIES = ['AppName', 'EnvName', 'Host', 'Port'] as const;

/** The physical ID: stable per app, environment and host. */
export function vpsPhysicalId(p: Pick<VpsResourceProperties, (typeof VPS_IDENTITY_PROPERTIES)[number]>): string {
  return `vps:${p.AppName}/${p.EnvName}@${p.Host}:${p.Port}`;
}
