import { deepEqual } from '@aws-cdk/cloudformation-diff';
import * as path from 'node:path';
import { isIntrinsic } from './paths';

/**
 * cloudformation-diff judges replacement by top-level properties only, so a change inside
 * SpotFleetRequestConfigData (instance types, tags, interruption behaviour) reads as an
 * in-place update although CloudFormation replaces the fleet. The same service spec it
 * reads also marks nested properties; this walks them.
 */

export interface SpecType {
  readonly type: string;
  readonly reference?: { readonly $ref: string };
  readonly element?: SpecType;
}
export interface SpecProperty {
  readonly type: SpecType;
  readonly causesReplacement?: 'yes' | 'no' | 'maybe';
}
export interface SpecShape {
  readonly properties: Readonly<Record<string, SpecProperty>>;
}
export interface SpecDatabase {
  lookup(table: 'resource', index: 'cloudFormationType', op: 'equals', key: string): SpecShape[];
  get(table: 'typeDefinition', id: string): SpecShape;
}

let database: SpecDatabase | undefined;

/** The spec database cloudformation-diff itself depends on (resolved from its folder, not hoisting). */
export function db(): SpecDatabase {
  if (!database) {
    const from = path.dirname(require.resolve('@aws-cdk/cloudformation-diff/package.json'));
    const modulePath = require.resolve('@aws-cdk/aws-service-spec', { paths: [from] });
    const spec = require(modulePath) as { loadAwsServiceSpecSync(): SpecDatabase };
    database = spec.loadAwsServiceSpecSync();
  }
  return database;
}

export interface NestedReplacement {
  readonly replace: string[];
  readonly mayReplace: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !isIntrinsic(v);
}

function walk(shape: SpecShape, oldValue: Record<string, unknown>, newValue: Record<string, unknown>, prefix: string, out: NestedReplacement, nested: boolean): void {
  for (const key of new Set([...Object.keys(oldValue), ...Object.keys(newValue)])) {
    const prop = shape.properties[key];
    if (!prop || deepEqual(oldValue[key], newValue[key])) continue;
    const at = prefix ? `${prefix}.${key}` : key;
    // Top-level flags are cloudformation-diff's job; only nested ones are added here.
    if (nested && prop.causesReplacement === 'yes') out.replace.push(at);
    else if (nested && prop.causesReplacement === 'maybe') out.mayReplace.push(at);
    else descend(prop.type, oldValue[key], newValue[key], at, out);
  }
}

function descend(type: SpecType, oldValue: unknown, newValue: unknown, at: string, out: NestedReplacement): void {
  if (type.type === 'ref' && type.reference && isObject(oldValue) && isObject(newValue)) {
    walk(db().get('typeDefinition', type.reference.$ref), oldValue, newValue, at, out, true);
  } else if (type.type === 'array' && type.element && Array.isArray(oldValue) && Array.isArray(newValue) && oldValue.length === newValue.length) {
    // Element-wise only when no element was added or removed; then the array's own flag decides.
    oldValue.forEach((v, i) => descend(type.element!, v, newValue[i], `${at}[${i}]`, out));
  }
}

/** Nested property paths whose change replaces (or may replace) a resource of this type. */
export function nestedReplacement(resourceType: string, oldProps: Record<string, unknown> = {}, newProps: Record<string, unknown> = {}): NestedReplacement {
  const out: NestedReplacement = { replace: [], mayReplace: [] };
  if (resourceType.startsWith('Custom::') || resourceType.startsWith('AWS::CloudFormation::CustomResource')) return out;
  const resource = db().lookup('resource', 'cloudFormationType', 'equals', resourceType)[0];
  if (resource) walk(resource, oldProps, newProps, '', out, false);
  return out;
}
