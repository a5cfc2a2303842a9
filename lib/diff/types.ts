import type { CfnTemplate } from '../synth';

/** Stack name to template: one environment's cloud assembly. */
export type Templates = Record<string, CfnTemplate>;

/** Environment name to its templates: a folder of per-environment cloud assemblies. */
export type AssemblySet = Record<string, Templates>;

/** What deploying the head does to one resource, in words a reviewer reads. */
export type Impact = 'create' | 'import' | 'destroy' | 'orphan' | 'replace' | 'may-replace' | 'update' | 'metadata';

export interface ResourceChange {
  readonly logicalId: string;
  /** The resource type; `Old -> New` when the type itself changed. */
  readonly type: string;
  readonly action: 'added' | 'removed' | 'changed';
  readonly impact: Impact;
  /** Changed paths inside the resource (`BucketName`, `LaunchTemplateData.UserData`, `Metadata`), capped. */
  readonly paths: string[];
  /** The paths that force the replacement, when the impact is replace or may-replace. */
  readonly replacingPaths: string[];
}

export interface StackChange {
  readonly env: string;
  readonly stack: string;
  readonly status: 'added' | 'removed' | 'changed';
  readonly resources: ResourceChange[];
  /** Changes outside Resources, e.g. `Outputs.BucketName (added)`. */
  readonly sections: string[];
  /** `cdk diff`-style text of the change (values under secret-looking keys redacted). */
  readonly detail: string;
}

export type FlagKind = 'stateful' | 'vps-redeploy' | 'iam' | 'security-group';

export interface Flag {
  readonly kind: FlagKind;
  /** Fails the gate unless destructive changes are allowed. */
  readonly destructive: boolean;
  readonly env: string;
  readonly stack: string;
  readonly logicalId?: string;
  readonly resourceType?: string;
  readonly message: string;
  /** A small table (first row is the header), e.g. the IAM statements that were added. */
  readonly rows?: string[][];
}

export interface CostLineChange {
  readonly item: string;
  readonly baseUsd: number;
  readonly headUsd: number;
}

export interface CostChange {
  readonly env: string;
  readonly baseUsd?: number;
  readonly headUsd?: number;
  readonly deltaUsd?: number;
  readonly lines: CostLineChange[];
  /** Why the environment could not be estimated. */
  readonly error?: string;
}

export interface DiffReport {
  /** No stack, resource or template section differs. */
  readonly empty: boolean;
  readonly allowDestructive: boolean;
  readonly flags: Flag[];
  readonly costs: CostChange[];
  readonly stacks: StackChange[];
}
