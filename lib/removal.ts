import { RemovalPolicy } from 'aws-cdk-lib';
import type { EnvironmentSettings } from './config/schema';

/** An environment's removal policy as configured: `destroy` (dev, staging) or `retain` (prod). */
export type RemovalSetting = EnvironmentSettings['removalPolicy'];

/** The CDK removal policy for a configured one: what happens to data when a stack or resource goes. */
export function removalPolicyOf(setting: RemovalSetting): RemovalPolicy {
  return setting === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
}
