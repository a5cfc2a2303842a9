/**
 * The contract between the gateway on the VPS (assets/gateway) and the GPU control function
 * (assets/lambda/gpu-control), which is the only thing the VPS's AWS credential may invoke.
 * IAM cannot bound a capacity value, so the function does: it clamps nothing and refuses
 * anything outside [0, maxInstances], and refuses raising capacity once the month's GPU
 * allowance is spent unless an operator override is set for the month (ops `gpu start --over-budget`;
 * the VPS can never set one).
 */

/** Tag the gateway puts on an instance it has work on (epoch seconds); the idle watcher leaves it alone until then. */
export const BUSY_UNTIL_TAG = 'comfyui:busy-until';

/** Tag the box writes at boot: its SSH host key as an OpenSSH `SHA256:…` fingerprint (ed25519). */
export const HOST_KEY_TAG = 'comfyui:host-key';

export type ControlRequest =
  | { readonly action: 'status' }
  /** Sets the fleet's target capacity; `reason` is logged. Raising is refused when the allowance is spent. */
  | { readonly action: 'set-capacity'; readonly capacity: number; readonly reason: string }
  /** Marks instances busy until now + seconds (at most 900), so their idle watchers do not leave under queued work. */
  | { readonly action: 'lease'; readonly instanceIds: readonly string[]; readonly seconds: number }
  /** Stores the gateway's SSH public key (ssh-ed25519 only) that new boxes authorize for port forwarding to ComfyUI. */
  | { readonly action: 'register-link-key'; readonly publicKey: string }
  /** Gateway counters for the dashboard (put as CloudWatch metrics by the function). */
  | { readonly action: 'report'; readonly metrics: GatewayMetrics }
  /** Files under models/ in the asset bucket (what a box syncs at boot). */
  | { readonly action: 'list-models' }
  /** Workflow templates: every `workflows/*.json` in the asset bucket (at most 100, each at most 1 MB). */
  | { readonly action: 'list-workflows' };

export interface ModelFile {
  /** Path below models/, e.g. `checkpoints/sd_xl_base_1.0.safetensors`. */
  readonly path: string;
  readonly bytes: number;
}

export interface WorkflowTemplate {
  /** File name without `.json`. */
  readonly name: string;
  /** ComfyUI API-format workflow (node id -> { class_type, inputs }). */
  readonly workflow: Record<string, unknown>;
}

export interface GatewayMetrics {
  readonly queueDepth: number;
  readonly running: number;
  readonly wakes: number;
  readonly jobsCompleted: number;
  readonly jobsFailed: number;
  readonly jobsResubmitted: number;
  /** Wake-to-ready times observed since the last report, in seconds. */
  readonly wakeToReadySeconds: readonly number[];
}

export interface ControlInstance {
  readonly instanceId: string;
  readonly instanceType: string;
  /** pending | running | stopping | shutting-down | … as EC2 reports it. */
  readonly state: string;
  readonly publicIp: string | null;
  readonly privateIp: string | null;
  readonly launchTime: string | null;
  /** The box has finished its `ready` boot phase (ComfyUI answered locally). */
  readonly ready: boolean;
  /** The box has tagged itself `comfyui:leaving`: never send it work. */
  readonly leaving: boolean;
  /** Epoch seconds of the gateway's lease, or null. */
  readonly busyUntil: number | null;
  /** `SHA256:…` host key fingerprint from the box's own tag, or null before it wrote it. */
  readonly hostKeySha256: string | null;
}

export interface BudgetStatus {
  /** `YYYY-MM` (UTC). */
  readonly month: string;
  /** monthlyBudgetUsd minus the fixed monthly floor (VPS, storage, monitoring). */
  readonly allowanceUsd: number;
  /** GPU instance time this month, priced at the configured Spot prices, from the AWS-side ledger plus live instances. */
  readonly usedUsd: number;
  readonly leftUsd: number;
  /** Instance-hours left at the most expensive configured type's Spot price. */
  readonly hoursLeft: number;
  readonly spent: boolean;
  /** An operator has allowed waking past the allowance for this month. */
  readonly overridden: boolean;
}

export interface ControlStatus {
  readonly fleetId: string;
  readonly targetCapacity: number;
  readonly fulfilledCapacity: number;
  readonly maxInstances: number;
  readonly instances: readonly ControlInstance[];
  readonly budget: BudgetStatus;
}

export type ControlErrorCode = 'BAD_REQUEST' | 'OUT_OF_RANGE' | 'BUDGET_SPENT' | 'FLEET_GONE';

export type ControlResponse =
  | {
      readonly ok: true;
      /** Every action but list-models and list-workflows answers with the fleet's status after it. */
      readonly status?: ControlStatus;
      readonly models?: readonly ModelFile[];
      readonly workflows?: readonly WorkflowTemplate[];
    }
  | { readonly ok: false; readonly code: ControlErrorCode; readonly message: string; readonly status?: ControlStatus };

/** What the gateway needs from the control path; the Lambda client and the tests' in-process client implement it. */
export interface ControlClient {
  call(request: ControlRequest): Promise<ControlResponse>;
}
