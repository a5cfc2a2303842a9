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
  BaseDir: string;
  KeepReleases: string;
  ConvergeTimeoutSeconds: string;
  /** "true" when the environment's removal policy is destroy: teardown also removes named volumes. */
  RemoveVolumesOnDelete: string;
}
