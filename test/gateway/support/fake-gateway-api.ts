import { randomUUID } from 'node:crypto';
import { GatewayError, type GatewayApi, type JobView, type PromptRequest, type SubmitResult } from '../../../assets/gateway/gateway-api';
import type { BudgetStatus, ControlClient, ControlRequest, ControlResponse, ControlStatus, ModelFile, WorkflowTemplate } from '../../../lib/gpu-control/protocol';

/**
 * In-process stand-ins for the MCP endpoint's two collaborators, following the contracts in
 * assets/gateway/gateway-api.ts and lib/gpu-control/protocol.ts: the gateway core (being written in
 * parallel) and the control function. They record what the MCP tools ask and let a test move a job on.
 */

export function budget(overrides: Partial<BudgetStatus> = {}): BudgetStatus {
  return { month: '2026-07', allowanceUsd: 38.5, usedUsd: 12.25, leftUsd: 26.25, hoursLeft: 48.6, spent: false, overridden: false, ...overrides };
}

export function controlStatus(overrides: Partial<ControlStatus> = {}): ControlStatus {
  return { fleetId: 'sfr-0a1b2c3d-test', targetCapacity: 0, fulfilledCapacity: 0, maxInstances: 3, instances: [], budget: budget(), ...overrides };
}

export class FakeGatewayApi implements GatewayApi {
  readonly submitted: PromptRequest[] = [];
  readonly stops: boolean[] = [];
  starts = 0;
  /** Calls of job(), to see a wait loop stop. */
  lookups = 0;
  status: ControlStatus = controlStatus();
  /** When set, job() throws it (the core failing, e.g. Redis gone). */
  jobError: Error | undefined;
  private readonly jobs = new Map<string, JobView>();

  async submitPrompt(request: PromptRequest): Promise<SubmitResult> {
    this.submitted.push(structuredClone(request));
    const promptId = request.prompt_id ?? randomUUID();
    const now = new Date().toISOString();
    this.jobs.set(promptId, { promptId, state: 'held', error: null, attempts: 0, instanceId: null, outputs: [], createdAt: now, updatedAt: now });
    return { promptId, number: this.submitted.length, held: true };
  }

  async job(promptId: string): Promise<JobView | null> {
    this.lookups++;
    if (this.jobError !== undefined) throw this.jobError;
    return this.jobs.get(promptId) ?? null;
  }

  async gpuStatus(): Promise<ControlStatus> {
    return this.status;
  }

  async gpuStart(): Promise<ControlStatus> {
    this.starts++;
    const { budget: b } = this.status;
    if (b.spent && !b.overridden) {
      throw new GatewayError(
        `The GPU allowance for ${b.month} is spent ($${b.usedUsd.toFixed(2)} of $${b.allowanceUsd.toFixed(2)}); an operator can allow more with: npm run ops -- gpu start --over-budget`,
        403,
        'BUDGET_SPENT',
      );
    }
    this.status = { ...this.status, targetCapacity: Math.max(1, this.status.targetCapacity) };
    return this.status;
  }

  async gpuStop(force: boolean): Promise<ControlStatus> {
    this.stops.push(force);
    this.status = { ...this.status, targetCapacity: 0 };
    return this.status;
  }

  /** The ids of submitted jobs, in order. */
  ids(): string[] {
    return [...this.jobs.keys()];
  }

  /** Moves a job to `completed` with outputs whose URLs look like the gateway's signed /outputs links. */
  complete(promptId: string, filenames: readonly string[]): void {
    const job = this.existing(promptId);
    const outputs = filenames.map((filename) => ({
      filename,
      subfolder: '',
      type: 'output',
      url: `http://127.0.0.1:8188/outputs/${promptId}/${filename}?expires=1785000000&sig=test-signature`,
    }));
    this.jobs.set(promptId, { ...job, state: 'completed', attempts: 1, instanceId: 'i-0123456789abcdef0', outputs, updatedAt: new Date().toISOString() });
  }

  fail(promptId: string, error: string): void {
    this.jobs.set(promptId, { ...this.existing(promptId), state: 'failed', attempts: 1, error, updatedAt: new Date().toISOString() });
  }

  private existing(promptId: string): JobView {
    const job = this.jobs.get(promptId);
    if (job === undefined) throw new Error(`the fake has no job ${promptId}`);
    return job;
  }
}

/** Answers list-models and list-workflows like the control function (protocol.ts), and counts the calls. */
export class FakeControlClient implements ControlClient {
  readonly calls: ControlRequest[] = [];
  models: ModelFile[] = [];
  workflows: WorkflowTemplate[] = [];
  /** When set, every call answers this refusal. */
  refusal: Extract<ControlResponse, { ok: false }> | undefined;
  /** When set, every call throws it (the Lambda invoke failing). */
  failure: Error | undefined;

  async call(request: ControlRequest): Promise<ControlResponse> {
    this.calls.push(request);
    if (this.failure !== undefined) throw this.failure;
    if (this.refusal !== undefined) return this.refusal;
    switch (request.action) {
      case 'list-models':
        return { ok: true, models: this.models };
      case 'list-workflows':
        return { ok: true, workflows: this.workflows };
      default:
        return { ok: false, code: 'BAD_REQUEST', message: `the fake control client does not answer ${request.action}` };
    }
  }

  callsOf(action: ControlRequest['action']): number {
    return this.calls.filter((c) => c.action === action).length;
  }
}
