import type { ControlStatus } from '../../lib/gpu-control/protocol';

/**
 * What the gateway core offers its front ends (the ComfyUI-compatible HTTP API and the MCP
 * tools in mcp.ts): one place that holds, submits and tracks prompts, so both behave alike.
 */

/** A ComfyUI `POST /prompt` body (ComfyUI v0.3.64 server.py `post_prompt`). */
export interface PromptRequest {
  readonly prompt: Record<string, unknown>;
  readonly client_id?: string;
  /** ComfyUI honours a client-supplied id; the gateway assigns a UUID when absent. */
  readonly prompt_id?: string;
  readonly extra_data?: Record<string, unknown>;
  readonly front?: boolean;
}

export type JobState = 'held' | 'submitted' | 'running' | 'completed' | 'failed';

export interface JobOutput {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: string;
  /** A URL the client can fetch without the bearer token: the gateway's signed, expiring /outputs link. */
  readonly url: string;
}

export interface JobView {
  readonly promptId: string;
  readonly state: JobState;
  /** Why it failed (no Spot capacity, budget spent, hold time exceeded, ComfyUI's validation error, …). */
  readonly error: string | null;
  /** Submissions so far (1 + resubmissions after an instance was lost). */
  readonly attempts: number;
  readonly instanceId: string | null;
  readonly outputs: readonly JobOutput[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface SubmitResult {
  readonly promptId: string;
  /** ComfyUI's `number` in its answer to POST /prompt (position counter). */
  readonly number: number;
  readonly held: boolean;
}

export interface GatewayApi {
  /** Validates shape only (ComfyUI validates the graph when it is submitted); throws GatewayError when refused. */
  submitPrompt(request: PromptRequest): Promise<SubmitResult>;
  job(promptId: string): Promise<JobView | null>;
  gpuStatus(): Promise<ControlStatus>;
  /** Raises capacity to at least one (refused when the allowance is spent). */
  gpuStart(): Promise<ControlStatus>;
  /** Sets capacity to 0 once no work is held or running; `force` stops under running work (it is resubmitted later). */
  gpuStop(force: boolean): Promise<ControlStatus>;
}

/** An error with the HTTP status and, for 503, the seconds a client should wait. */
export class GatewayError extends Error {
  constructor(
    message: string,
    readonly httpStatus: number,
    readonly code: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}
