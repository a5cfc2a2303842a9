import type { JobRecord } from './job-store';

/**
 * ComfyUI-shaped views of the gateway's own records (execution.py v0.3.64: a queue item is
 * (number, prompt_id, prompt, extra_data, outputs_to_execute); a history entry is
 * {prompt, outputs, status: {status_str, completed, messages}, meta}).
 */

/** A queue item from a full record (JobStore.getMany(ids, true)). */
export function queueItem(job: JobRecord): unknown[] {
  const extraData = { ...(job.request?.extra_data ?? {}), ...(job.clientId !== null ? { client_id: job.clientId } : {}) };
  return [job.number, job.promptId, job.request?.prompt ?? {}, extraData, []];
}

/**
 * The /history entry for a finished job: the box's own (kept when it finished), or, for a job
 * that failed in the gateway (hold time, budget, lost too often, refused), an entry with an
 * execution_error message carrying the reason, so a client polling /history stops waiting.
 */
export function historyEntry(job: JobRecord): unknown | null {
  if (job.history) return job.history;
  if (job.state !== 'failed') return null;
  const error = {
    prompt_id: job.promptId,
    node_id: null,
    node_type: null,
    executed: [],
    exception_message: job.error ?? 'failed',
    exception_type: 'GatewayError',
    traceback: [],
    current_inputs: {},
    current_outputs: [],
    timestamp: job.updatedAt,
  };
  return { prompt: queueItem(job), outputs: {}, status: { status_str: 'error', completed: false, messages: [['execution_error', error]] }, meta: {} };
}
