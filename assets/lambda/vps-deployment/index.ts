import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { appSecretSeed, deriveSecrets } from '../../../lib/vps/app-secrets';
import { gatewayCredentialEnv } from '../../../lib/vps/gateway-credential';
import { deploy, teardown } from '../../../lib/vps/deployer';
import { prefetchStatus, startPrefetch } from '../../../lib/vps/deployer-prefetch';
import { DeployError, type Bundle, type DeployTarget, type LockInfo, type Secrets, type SshConnection } from '../../../lib/vps/deployer-types';
import { GATE_LAMBDA_TIMEOUT_SECONDS } from '../../../lib/vps/gate-budget';
import { vpsPhysicalId, type VpsResourceProperties } from '../../../lib/vps/custom-resource/properties';

/**
 * The VPS deployment as a CloudFormation custom resource (Provider framework):
 * onEvent uploads the release and starts the image pull; isComplete waits for
 * the pull, then runs the gated deploy. A failed gate leaves the previous
 * release serving and fails the update, so CloudFormation rolls back (which
 * re-applies the previous bundle: a no-op on the VPS). Delete tears the stack
 * down, keeping named volumes unless the environment's removal policy is destroy.
 */

interface ProviderEvent {
  RequestType: 'Create' | 'Update' | 'Delete';
  PhysicalResourceId?: string;
  ResourceProperties: VpsResourceProperties & { ServiceToken?: string };
}

interface Context {
  connection: SshConnection;
  target: DeployTarget;
  secrets: Secrets;
}

const log = (line: string) => console.log(line);

/** No invocation outlives its timeout, so a lock a handler left behind is dead after this long. */
const LAMBDA_LEASE_SECONDS = GATE_LAMBDA_TIMEOUT_SECONDS;

async function secretString(client: SecretsManagerClient, arn: string): Promise<string> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new Error(`secret ${arn} has no string value`);
  return out.SecretString;
}

/**
 * CloudFormation refuses responses over 4,096 bytes. The Provider framework's reason is the
 * message, a "Logs: <function>" line and the stack lines after the first, so the message is
 * cut to this many bytes and the stack is a single line.
 */
export const MAX_REASON_BYTES = 2500;

/** The start of `text` that fits `maxBytes` of UTF-8, without splitting a character. */
function fitBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let end = Math.min(text.length, maxBytes);
  while (end > 0 && Buffer.byteLength(text.slice(0, end)) > maxBytes) end -= 1;
  return text.slice(0, end);
}

/**
 * Runs a handler; a failure is logged whole (CloudWatch) and rethrown short enough for the
 * CloudFormation response (the deployer's messages are already redacted).
 */
async function reported<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    throw forCloudFormation(error);
  }
}

/** The error a handler throws: its message cut to MAX_REASON_BYTES, a one-line stack. */
export function forCloudFormation(error: unknown): Error {
  const full = error instanceof Error ? error.message : String(error);
  const note = "\n... (the rest is in the function's CloudWatch log)";
  const short = Buffer.byteLength(full) <= MAX_REASON_BYTES ? full : `${fitBytes(full, MAX_REASON_BYTES - Buffer.byteLength(note))}${note}`;
  const thrown = new Error(short);
  thrown.stack = 'VpsDeploymentError (full text in the CloudWatch log)';
  return thrown;
}

async function contextOf(p: VpsResourceProperties): Promise<Context> {
  const sm = new SecretsManagerClient({});
  const [privateKey, appSecret, credential] = await Promise.all([
    secretString(sm, p.SshKeySecretArn),
    secretString(sm, p.AppSecretsArn),
    secretString(sm, p.GatewayCredentialSecretArn),
  ]);
  return {
    connection: { host: p.Host, port: Number(p.Port), username: p.User, hostKeySha256: p.HostKeySha256 || undefined, privateKey },
    target: { appName: p.AppName, envName: p.EnvName, baseDir: p.BaseDir, keepReleases: Number(p.KeepReleases) },
    secrets: { ...deriveSecrets(appSecretSeed(appSecret, p.AppSecretsArn), p.SecretNames), ...gatewayCredentialEnv(credential, p.GatewayCredentialSecretArn) },
  };
}

async function bundleOf(p: VpsResourceProperties): Promise<Bundle> {
  // Path-style only against a custom endpoint (a local S3 API); AWS itself gets the default addressing.
  const s3 = new S3Client({ forcePathStyle: !!process.env.AWS_ENDPOINT_URL });
  const out = await s3.send(new GetObjectCommand({ Bucket: p.BundleBucket, Key: p.BundleKey }));
  const bundle = JSON.parse(await out.Body!.transformToString()) as Bundle;
  if (bundle.hash !== p.BundleHash) throw new Error(`bundle object ${p.BundleKey} holds release ${bundle.hash}, expected ${p.BundleHash}`);
  return bundle;
}


export function onEvent(event: ProviderEvent): Promise<{ PhysicalResourceId: string; Data?: Record<string, string> }> {
  return reported(async () => {
    const p = event.ResourceProperties;
    if (event.RequestType === 'Delete') {
      const ctx = await contextOf(p);
      const removeVolumes = p.RemoveVolumesOnDelete === 'true';
      // Only what this resource deployed: not after a failed create whose gate restored an
      // earlier release, nor after a host/port change that still reaches the same VPS.
      const physicalId = event.PhysicalResourceId ?? vpsPhysicalId(p);
      await teardown(ctx.connection, ctx.target, { removeVolumes, onlyIfOwner: physicalId, leaseSeconds: LAMBDA_LEASE_SECONDS, secrets: ctx.secrets, log });
      return { PhysicalResourceId: physicalId };
    }
    const [ctx, bundle] = await Promise.all([contextOf(p), bundleOf(p)]);
    await startPrefetch(ctx.connection, ctx.target, bundle, ctx.secrets, { leaseSeconds: LAMBDA_LEASE_SECONDS, log });
    return { PhysicalResourceId: vpsPhysicalId(p), Data: { Release: bundle.hash } };
  });
}

export function isComplete(event: ProviderEvent): Promise<{ IsComplete: boolean; Data?: Record<string, string> }> {
  return reported(async () => {
    if (event.RequestType === 'Delete') return { IsComplete: true };
    const p = event.ResourceProperties;
    const ctx = await contextOf(p);
    const pull = await prefetchStatus(ctx.connection, ctx.target, p.BundleHash, ctx.secrets);
    if (pull.state === 'running') return { IsComplete: false };
    if (pull.state !== 'succeeded') {
      throw new Error(`docker compose pull of release ${p.BundleHash} ${pull.state}; nothing was switched:\n${pull.output}`);
    }
    const bundle = await bundleOf(p);
    let result;
    try {
      result = await deploy(ctx.connection, ctx.target, bundle, ctx.secrets, {
      composeTimeoutSeconds: Number(p.ConvergeTimeoutSeconds),
      // The prefetch pulled them: a second pull would only spend the run's 15 minutes.
      imagesPulled: true,
      owner: vpsPhysicalId(p),
      leaseSeconds: LAMBDA_LEASE_SECONDS,
      // The gate's time budget has no room for waiting on a lock (gate-budget.ts).
      lockWaitSeconds: 0,
      log,
      });
    } catch (error) {
      // The gate step runs on the VPS on its own (it survived a lost connection, or an earlier
      // run's step still holds the lock): poll again; the next run finds the release serving or
      // deploys it once more, while the previous release keeps serving.
      if (error instanceof DeployError && (error.code === 'GATE_DETACHED' || (error.code === 'LOCKED' && / gate=/.test((error.details as LockInfo | undefined)?.owner ?? '')))) {
        log(`${error.code}: the gate step on the VPS finishes on its own; polling again`);
        return { IsComplete: false };
      }
      throw error;
    }
    return { IsComplete: true, Data: { Release: result.release, Action: result.action } };
  });
}
