import { deepEqual } from '@aws-cdk/cloudformation-diff';

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `{ "Ref": ... }` or `{ "Fn::...": ... }`: one value, compared as a whole. */
export function isIntrinsic(v: Json): boolean {
  if (!isObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && (keys[0] === 'Ref' || keys[0]!.startsWith('Fn::'));
}

function join(prefix: string, key: string | number): string {
  if (typeof key === 'number') return `${prefix}[${key}]`;
  return prefix ? `${prefix}.${key}` : key;
}

/**
 * The leaf paths where two JSON values differ, e.g. `LaunchTemplateData.UserData` or
 * `SecurityGroupIngress[1]`. Intrinsics and arrays of different lengths are leaves.
 * Only paths are returned, never values, so nothing from a template leaks into the report.
 */
export function changedPaths(oldValue: Json, newValue: Json, prefix = ''): string[] {
  if (deepEqual(oldValue, newValue)) return [];
  if (isObject(oldValue) && isObject(newValue) && !isIntrinsic(oldValue) && !isIntrinsic(newValue)) {
    const keys = [...new Set([...Object.keys(oldValue), ...Object.keys(newValue)])];
    return keys.flatMap((k) => changedPaths(oldValue[k], newValue[k], join(prefix, k)));
  }
  if (Array.isArray(oldValue) && Array.isArray(newValue) && oldValue.length === newValue.length) {
    return oldValue.flatMap((v, i) => changedPaths(v, newValue[i], join(prefix, i)));
  }
  return [prefix || '(whole value)'];
}
