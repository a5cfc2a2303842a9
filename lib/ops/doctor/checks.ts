import type { EnvironmentConfig } from '../../config/load';
import { billingAlertsCheck } from './billing-alerts';
import { bootstrapCheck } from './bootstrap';
import { costAllocationTagCheck } from './cost-allocation-tag';
import { credentialsCheck } from './credentials';
import { spotQuotaCheck } from './spot-quota';
import { spotRolesCheck } from './spot-roles';
import { sshKeySecretCheck } from './ssh-key-secret';
import type { DoctorCheck } from './types';
import { dnsChecks } from './vps-dns';
import { vpsHostKeyCheck } from './vps-host-key';

/** Every check, in the order of the README's first-deploy steps: account set-up, deploy key, VPS. */
export function doctorChecks(config: EnvironmentConfig, dnsServers: readonly string[]): DoctorCheck[] {
  return [
    credentialsCheck,
    bootstrapCheck,
    spotRolesCheck,
    spotQuotaCheck,
    billingAlertsCheck,
    costAllocationTagCheck,
    sshKeySecretCheck,
    vpsHostKeyCheck,
    ...dnsChecks(config, dnsServers),
  ];
}
