/**
 * Jest snapshot serializer for CloudFormation templates: replaces asset hashes
 * and drops what changes with the CDK release rather than with our code
 * (bootstrap version checks, version reporting, runtime maps of CDK's own
 * provider functions), so snapshots only churn when the infrastructure does.
 */
import { maskAssetHashes } from '../../lib/diff/asset-hash';

const MARK = Symbol.for('aiassets.normalized');

/** Jest serializer hook: which values this serializer prints. */
export function test(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && 'Resources' in value && !(MARK in value);
}

export function normalizeTemplate(template: Record<string, unknown>): Record<string, unknown> {
  const copy = JSON.parse(maskAssetHashes(JSON.stringify(template))) as Record<string, any>;
  delete copy.Parameters?.BootstrapVersion;
  delete copy.Rules?.CheckBootstrapVersion;
  for (const key of Object.keys(copy.Mappings ?? {})) {
    if (/RuntimeMap|LatestNodeRuntime/i.test(key)) delete copy.Mappings[key];
  }
  delete copy.Resources.CDKMetadata;
  delete copy.Conditions?.CDKMetadataAvailable;
  for (const resource of Object.values<any>(copy.Resources)) {
    if (resource.Type === 'AWS::Lambda::Function' && /Provider|CustomResource/.test(JSON.stringify(resource.Properties?.Role ?? ''))) {
      resource.Properties.Runtime = '[CDK PROVIDER RUNTIME]';
    }
  }
  for (const section of ['Parameters', 'Rules', 'Mappings', 'Conditions']) {
    if (copy[section] && Object.keys(copy[section]).length === 0) delete copy[section];
  }
  Object.defineProperty(copy, MARK, { value: true, enumerable: false });
  return copy;
}

/** Jest serializer hook: prints the normalized template with Jest's own printer. */
export function serialize(
  value: Record<string, unknown>,
  config: unknown,
  indentation: string,
  depth: number,
  refs: unknown,
  printer: (v: unknown, c: unknown, i: string, d: number, r: unknown) => string,
): string {
  return printer(normalizeTemplate(value), config, indentation, depth, refs);
}
