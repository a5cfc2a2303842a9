import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { stackName } from '../app';
import type { EnvironmentConfig } from '../config/load';
import { gatewayCredentialSecretName } from '../gpu-control-names';
import { appSecretSeed, deriveSecrets } from '../vps/app-secrets';
import { GATEWAY_SECRETS, STACK_SECRETS } from '../vps/bundle';
import type { Secrets } from '../vps/deployer-types';
import { gatewayCredentialEnv } from '../vps/gateway-credential';
import type { OpsDeps, Reporter } from './context';
import { ExitCode, OpsError, isAwsError } from './errors';
import { deployHint, describeStack, requireOutput } from './stack-outputs';

/**
 * The `.env` values of the VPS stack, derived exactly as the custom resource
 * does: the seed is the `seed` field of the secret the `<App>-<env>-Vps` stack
 * exposes as output `AppSecretsArn`. Values are returned, never printed; no
 * message here quotes the secret's content.
 */

export const APP_SECRETS_OUTPUT = 'AppSecretsArn';

type Deps = Pick<OpsDeps, 'clients'>;

/** The seed and the secret's ARN; OpsError(notDeployed) when the Vps stack, its output or the secret is missing. */
async function fetchSeed(config: EnvironmentConfig, deps: Deps): Promise<{ seed: string; arn: string }> {
  const name = stackName(config, 'Vps');
  const stack = await describeStack(deps.clients(config.region).cloudFormation, name);
  if (!stack) {
    throw new OpsError(`Stack ${name} is not deployed in ${config.region}, so its app secret (output ${APP_SECRETS_OUTPUT}) cannot be read: run ${deployHint(config)}`, ExitCode.notDeployed);
  }
  const arn = requireOutput(stack, APP_SECRETS_OUTPUT, config);
  try {
    const out = await deps.clients(config.region).secretsManager.send(new GetSecretValueCommand({ SecretId: arn }));
    if (!out.SecretString) throw new OpsError(`The app secret ${arn} has no string value.`);
    return { seed: appSecretSeed(out.SecretString, arn), arn };
  } catch (error) {
    if (isAwsError(error, 'ResourceNotFoundException')) {
      throw new OpsError(`The app secret ${arn} (output ${APP_SECRETS_OUTPUT} of ${name}) does not exist: redeploy with ${deployHint(config)}`, ExitCode.notDeployed);
    }
    if (error instanceof Error && !(error instanceof OpsError) && error.message.startsWith('the app secret')) throw new OpsError(error.message);
    throw error;
  }
}

/** The secrets a deploy writes to `.env` (the names the rendered bundle references). */
export async function readDeploySecrets(config: EnvironmentConfig, names: readonly string[], deps: Deps): Promise<Secrets> {
  const [{ seed }, credential] = await Promise.all([fetchSeed(config, deps), fetchGatewayCredential(config, deps)]);
  return { ...deriveSecrets(seed, names), ...credential };
}

/** The gateway's access key from the Gpu stack's credential secret (by its fixed name). */
async function fetchGatewayCredential(config: EnvironmentConfig, deps: Deps): Promise<Secrets> {
  const secretName = gatewayCredentialSecretName(config);
  try {
    const out = await deps.clients(config.region).secretsManager.send(new GetSecretValueCommand({ SecretId: secretName }));
    if (!out.SecretString) throw new OpsError(`The gateway credential secret ${secretName} has no string value.`);
    return gatewayCredentialEnv(out.SecretString, secretName);
  } catch (error) {
    if (isAwsError(error, 'ResourceNotFoundException')) {
      throw new OpsError(`The gateway credential secret ${secretName} does not exist in ${config.region}: deploy the Gpu stack first (${deployHint(config)})`, ExitCode.notDeployed);
    }
    if (error instanceof Error && !(error instanceof OpsError) && error.message.startsWith('the gateway credential secret')) throw new OpsError(error.message);
    throw error;
  }
}

/**
 * Every value that may sit in a release's `.env` (plus the seed), only to mask
 * them in output. When the Vps stack or its secret is missing the command goes
 * on and says so: the deployer then masks the values it reads from the `.env`
 * files of the releases on the VPS (what the output could leak), and fails
 * closed if it cannot read them. Other errors (credentials, access) stop it.
 */
export async function readRedactionSecrets(config: EnvironmentConfig, deps: Deps, reporter: Reporter): Promise<Secrets | undefined> {
  try {
    const { seed } = await fetchSeed(config, deps);
    return { ...deriveSecrets(seed, [...STACK_SECRETS, ...GATEWAY_SECRETS]), APP_SECRET_SEED: seed };
  } catch (error) {
    if (error instanceof OpsError && error.exitCode === ExitCode.notDeployed) {
      reporter.warn(`${error.message}\nProceeding without the app secrets: output from the VPS is masked with the values of the releases' .env files there.`);
      return undefined;
    }
    throw error;
  }
}
