import { randomUUID } from 'node:crypto';
import type { ControlInstance, ControlStatus } from '../../lib/gpu-control/protocol';
import type { DispatchOutcome, Dispatcher } from './dispatcher';
import { ControlRefused, type FleetView } from './fleet-view';
import { GatewayError, type GatewayApi, type JobView, type PromptRequest, type SubmitResult } from './gateway-api';
import type { JobRecord, JobStore } from './job-store';
import { signedOutputPath } from './output-links';
import type { GatewaySettings } from './settings';
import type { Waker } from './waker';

/** ComfyUI refused the prompt when it was submitted: the HTTP front end answers with ComfyUI's own 400 body. */
export class PromptRefused extends GatewayError {
  constructor(
    message: string,
    readonly comfyBody: unknown,
  ) {
    super(message, 400, 'PROMPT_REFUSED');
  }
}

/** prompt_id names a Redis key and an output folder: a UUID or similar, nothing that could climb a path. */
const PROMPT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A submission to a ready box is answered with its outcome (ComfyUI's validation) if it comes this fast. */
const SETTLE_WAIT_MS = 5000;
/** What a 503 asks clients to wait while a GPU wakes (a wake takes minutes; a poll every 30 s is enough). */
export const WAKE_RETRY_AFTER_SECONDS = 30;
/** A proxied call uses a fleet status up to this old (the box list changes in minutes, not seconds). */
const PROXY_STATUS_MAX_AGE_MS = 60_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkRequest(request: PromptRequest): { promptId: string; front: boolean } {
  if (!isObject(request)) throw new GatewayError('the body must be a JSON object like ComfyUI POST /prompt takes', 400, 'INVALID_REQUEST');
  if (!isObject(request.prompt)) {
    throw new GatewayError('prompt must be a ComfyUI API-format workflow: an object of node id -> {class_type, inputs}', 400, 'INVALID_PROMPT');
  }
  const raw = (request as { prompt_id?: unknown }).prompt_id;
  const promptId = raw === undefined || raw === null ? randomUUID() : String(raw);
  if (!PROMPT_ID.test(promptId)) {
    throw new GatewayError(`prompt_id "${promptId.slice(0, 60)}" is not allowed: use 1 to 128 of A-Z a-z 0-9 . _ - (a UUID, for example), starting with a letter or digit`, 400, 'INVALID_PROMPT_ID');
  }
  const clientId = (request as { client_id?: unknown }).client_id;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length > 256)) {
    throw new GatewayError('client_id must be a string of at most 256 characters (the id the client uses on /ws?clientId=)', 400, 'INVALID_CLIENT_ID');
  }
  if (request.extra_data !== undefined && !isObject(request.extra_data)) throw new GatewayError('extra_data must be an object', 400, 'INVALID_EXTRA_DATA');
  return { promptId, front: request.front === true };
}

/** The gateway core behind both front ends (ComfyUI-compatible HTTP and MCP). */
export class GatewayCore implements GatewayApi {
  constructor(
    private readonly store: JobStore,
    private readonly fleet: FleetView,
    private readonly waker: Waker,
    private readonly dispatcher: Dispatcher,
    private readonly settings: GatewaySettings,
  ) {}

  async submitPrompt(request: PromptRequest): Promise<SubmitResult> {
    const { promptId, front } = checkRequest(request);
    const kept: Omit<PromptRequest, 'prompt_id'> = { prompt: request.prompt };
    if (request.client_id !== undefined) Object.assign(kept, { client_id: request.client_id });
    if (request.extra_data !== undefined) Object.assign(kept, { extra_data: request.extra_data });
    const wait = this.fleet.dispatchable().length > 0 ? this.settled(promptId) : null;
    const admission = await this.store.admit(promptId, kept, front, this.settings.maxQueue);
    if ('refused' in admission) {
      wait?.cancel();
      if (admission.refused === 'exists') throw new GatewayError(`prompt_id ${promptId} was already submitted: use a new id for a new prompt`, 400, 'DUPLICATE_PROMPT_ID');
      throw new GatewayError(
        `the gateway already holds or runs ${this.settings.maxQueue} prompts (MAX_QUEUE=${this.settings.maxQueue}): retry when some have finished`,
        429,
        'QUEUE_FULL',
        WAKE_RETRY_AFTER_SECONDS,
      );
    }
    wait?.afterPass(this.dispatcher.passesStarted);
    this.dispatcher.kick();
    const outcome = wait ? await wait.promise : null;
    if (outcome?.kind === 'refused') throw new PromptRefused(`ComfyUI refused prompt ${promptId}`, outcome.comfyBody);
    return { promptId, number: admission.number, held: outcome?.kind !== 'submitted' };
  }

  async job(promptId: string): Promise<JobView | null> {
    const record = await this.store.get(promptId);
    return record ? this.view(record) : null;
  }

  view(record: JobRecord, now = Date.now()): JobView {
    const exp = Math.floor(now / 1000) + this.settings.outputLinkTtlSeconds;
    return {
      promptId: record.promptId,
      state: record.state,
      error: record.error,
      attempts: record.attempts,
      instanceId: record.instanceId,
      outputs: record.outputs.map((o) => ({
        filename: o.filename,
        subfolder: o.subfolder,
        type: o.type,
        url: `${this.settings.publicBaseUrl}${signedOutputPath(this.settings.outputLinkSecret, record.promptId, o.file, exp)}`,
      })),
      createdAt: new Date(record.createdAt).toISOString(),
      updatedAt: new Date(record.updatedAt).toISOString(),
    };
  }

  gpuStatus(): Promise<ControlStatus> {
    return this.fleet.fresh(0);
  }

  async gpuStart(): Promise<ControlStatus> {
    await this.fleet.fresh(0);
    const outcome = await this.waker.ensure(1, 'gpu_start');
    if (outcome.kind === 'refused') throw new GatewayError(outcome.message, outcome.code === 'BUDGET_SPENT' ? 402 : 409, outcome.code);
    if (outcome.kind === 'error') throw new GatewayError(outcome.message, 502, 'CONTROL_UNREACHABLE');
    return this.fleet.status ?? this.fleet.fresh(0);
  }

  async gpuStop(force: boolean): Promise<ControlStatus> {
    const { held, active } = await this.store.counts();
    if (!force && held + active > 0) {
      throw new GatewayError(`${held} prompt(s) held and ${active} running: stopping now would interrupt them; use force to stop anyway (they are resubmitted later)`, 409, 'BUSY');
    }
    try {
      const response = await this.fleet.call({ action: 'set-capacity', capacity: 0, reason: force ? 'gpu_stop (forced)' : 'gpu_stop' });
      return response.status ?? (await this.fleet.fresh(0));
    } catch (error) {
      if (error instanceof ControlRefused) throw new GatewayError(error.message, 409, error.code);
      throw error;
    }
  }

  /**
   * A ready box for a call that needs a live GPU: the least-loaded one. With none, wakes one (the
   * single-flight waker) and throws 503 with Retry-After and why (waking, budget spent, …).
   */
  async readyInstance(): Promise<ControlInstance> {
    let ready = this.fleet.ageMs() <= PROXY_STATUS_MAX_AGE_MS ? this.fleet.dispatchable() : [];
    if (ready.length === 0) {
      try {
        await this.fleet.fresh(this.settings.statusIntervalMs);
      } catch {
        // the waker and the 503 below say what is wrong
      }
      ready = this.fleet.dispatchable();
    }
    if (ready.length > 0) {
      const load = this.dispatcher.load;
      return ready.reduce((a, b) => ((load.get(b.instanceId) ?? 0) < (load.get(a.instanceId) ?? 0) ? b : a));
    }
    const outcome = this.fleet.status ? await this.waker.ensure(1, 'a ComfyUI call needs a GPU') : null;
    const obstacle = outcome?.kind === 'refused' || outcome?.kind === 'error' ? outcome.message : this.dispatcher.obstacle();
    const code = outcome?.kind === 'refused' ? outcome.code : 'GPU_WAKING';
    throw new GatewayError(`no GPU is ready${obstacle ? `: ${obstacle}` : ': one is waking'}; retry in ${WAKE_RETRY_AFTER_SECONDS} s`, 503, code, WAKE_RETRY_AFTER_SECONDS);
  }

  /** Forgets the fleet status (a proxied call found its box gone), so the next call reads it again. */
  fleetChanged(): void {
    this.fleet.invalidate();
  }

  /**
   * The dispatch outcome of a prompt: what a pass that started after its admission did with it
   * (afterPass says which), or null when that pass left it held (the boxes are full) or
   * SETTLE_WAIT_MS passed. Listening starts before the admission, so no outcome is missed.
   */
  private settled(promptId: string): { promise: Promise<DispatchOutcome | null>; afterPass(n: number): void; cancel(): void } {
    let done: (value: DispatchOutcome | null) => void = () => undefined;
    const promise = new Promise<DispatchOutcome | null>((resolve) => (done = resolve));
    let admittedAfter = Number.POSITIVE_INFINITY;
    const onSettled = (id: string, outcome: DispatchOutcome) => id === promptId && finish(outcome);
    const onPass = (pass: number) => pass > admittedAfter && finish(null);
    const timer = setTimeout(() => finish(null), SETTLE_WAIT_MS);
    const finish = (outcome: DispatchOutcome | null) => {
      clearTimeout(timer);
      this.dispatcher.events.off('settled', onSettled);
      this.dispatcher.events.off('pass-done', onPass);
      done(outcome);
    };
    this.dispatcher.events.on('settled', onSettled);
    this.dispatcher.events.on('pass-done', onPass);
    return { promise, afterPass: (n) => (admittedAfter = n), cancel: () => finish(null) };
  }
}
