/**
 * Resource types whose replacement or removal loses data or running work, with what is lost.
 * A replacement creates a new physical resource and deletes the old one, so it counts as a removal.
 */
export const STATEFUL_TYPES: Readonly<Record<string, { readonly what: string; readonly loss: string }>> = {
  'AWS::S3::Bucket': { what: 'S3 bucket', loss: 'the old bucket is deleted with its objects (models, generated images, workflows or access logs)' },
  'AWS::EC2::SpotFleet': { what: 'Spot Fleet', loss: 'the fleet request is cancelled and the running GPU instance is terminated' },
  'Custom::VpsDeployment': {
    what: 'VPS deployment',
    loss: 'the deployment on the VPS is torn down (containers stopped; data volumes removed when RemoveVolumesOnDelete is true)',
  },
  'AWS::KMS::Key': { what: 'KMS key', loss: 'the key is scheduled for deletion and data encrypted with it becomes unreadable' },
  'AWS::Logs::LogGroup': { what: 'log group', loss: 'its log events are deleted' },
  'AWS::SecretsManager::Secret': { what: 'Secrets Manager secret', loss: 'its value is lost (secrets derived from it change)' },
  'AWS::EC2::Volume': { what: 'EBS volume', loss: 'its data is deleted' },
  'AWS::EFS::FileSystem': { what: 'EFS file system', loss: 'its files are deleted' },
  'AWS::DynamoDB::Table': { what: 'DynamoDB table', loss: 'its items are deleted' },
  'AWS::RDS::DBInstance': { what: 'RDS instance', loss: 'its data is deleted (a final snapshot only if the policy says Snapshot)' },
};

// The VPS deployment's type and the properties its physical ID is made of live with the handler.
export { VPS_DEPLOYMENT_TYPE, VPS_IDENTITY_PROPERTIES } from '../vps/custom-resource/properties';

/** Policies under which CloudFormation keeps the old physical resource instead of deleting it. */
export function retains(policy: unknown): boolean {
  return policy === 'Retain' || policy === 'RetainExceptOnCreate';
}
