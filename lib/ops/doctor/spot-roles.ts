import { GetRoleCommand } from '@aws-sdk/client-iam';
import { isAwsError } from '../errors';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type CheckContext, type DoctorCheck } from './types';

/**
 * The service-linked roles EC2 Spot needs (EC2 User Guide, "Service-linked role for Spot Instance
 * requests" and "Spot Fleet permissions"): the role name AWS gives each, and the service name that
 * creates it. A fresh account may lack them; the fleet's first launch then fails.
 */
export const SPOT_SERVICE_LINKED_ROLES = [
  { roleName: 'AWSServiceRoleForEC2Spot', serviceName: 'spot.amazonaws.com' },
  { roleName: 'AWSServiceRoleForEC2SpotFleet', serviceName: 'spotfleet.amazonaws.com' },
] as const;

async function roleExists({ account, signal }: CheckContext, roleName: string): Promise<boolean> {
  try {
    await account.iam.send(new GetRoleCommand({ RoleName: roleName }), { abortSignal: signal });
    return true;
  } catch (error) {
    if (isAwsError(error, 'NoSuchEntity')) return false;
    throw error;
  }
}

export const spotRolesCheck: DoctorCheck = {
  name: 'spot-service-linked-roles',
  severity: 'fail',
  actions: ['iam:GetRole'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run(context) {
    const exists = await Promise.all(SPOT_SERVICE_LINKED_ROLES.map((r) => roleExists(context, r.roleName)));
    const missing = SPOT_SERVICE_LINKED_ROLES.filter((_, i) => !exists[i]);
    const names = SPOT_SERVICE_LINKED_ROLES.map((r) => r.roleName).join(' and ');
    if (missing.length === 0) return ok(`${names} exist`);
    return problem(
      'fail',
      `missing ${missing.map((r) => r.roleName).join(' and ')} (the fleet's first launch would fail with ServiceLinkedRoleCreationNotPermitted; an "already exists" error from the fix is fine)`,
      ...missing.map((r) => `aws iam create-service-linked-role --aws-service-name ${r.serviceName}`),
    );
  },
};
