import { DescribeSecretCommand } from '@aws-sdk/client-secrets-manager';
import { isAwsError } from '../errors';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type DoctorCheck } from './types';
import { skipWithoutVps } from './vps-scope';

/**
 * The deploy key secret the Vps stack's deploy function reads by name (vps.sshKeySecretName,
 * Secret.fromSecretNameV2 in lib/vps-deployment.ts), in the environment's region. Only
 * DescribeSecret: the value is never read.
 */
export const sshKeySecretCheck: DoctorCheck = {
  name: 'ssh-key-secret',
  severity: 'fail',
  actions: ['secretsmanager:DescribeSecret'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run({ config, aws, signal }) {
    const skipped = skipWithoutVps(config);
    if (skipped) return skipped;
    const name = config.vps.sshKeySecretName;
    const where = `in ${config.region}`;
    try {
      const out = await aws.secretsManager.send(new DescribeSecretCommand({ SecretId: name }), { abortSignal: signal });
      if (out.DeletedDate) {
        return problem('fail', `secret ${name} ${where} is scheduled for deletion (${out.DeletedDate.toISOString()})`, `aws secretsmanager restore-secret --secret-id ${name} --region ${config.region}`);
      }
      return ok(`secret ${name} exists ${where} (its value was not read)`);
    } catch (error) {
      if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
      const keyFile = `~/.ssh/${config.appName.toLowerCase()}-${config.envName}`;
      return problem(
        'fail',
        `no secret ${name} ${where}: the Vps stack's deploy function reads the deploy user's private key from it, in the environment's region`,
        `ssh-keygen -t ed25519 -N '' -C deploy@${config.appName.toLowerCase()}-${config.envName} -f ${keyFile}   # if you have no deploy key yet; provision the VPS with ${keyFile}.pub`,
        `aws secretsmanager create-secret --region ${config.region} --name ${name} --secret-string file://$HOME/.ssh/${config.appName.toLowerCase()}-${config.envName}`,
      );
    }
  },
};
