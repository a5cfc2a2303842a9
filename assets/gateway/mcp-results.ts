import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { dollars } from '../../lib/cost/money';
import type { BudgetStatus, ControlInstance, ControlStatus } from '../../lib/gpu-control/protocol';
import type { JobOutput, JobView } from './gateway-api';

/** How the MCP tools put gateway state into tool results: text a model reads, plus the same as structured content. */

export function textResult(text: string, structured?: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text }], ...(structured === undefined ? {} : { structuredContent: structured }) };
}

export function toolError(text: string): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true };
}

const MIME_TYPES: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  gif: 'image/gif',
  mp4: 'video/mp4',
  webm: 'video/webm',
};

function mimeType(filename: string): string | undefined {
  const extension = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase();
  return extension === undefined ? undefined : MIME_TYPES[extension];
}

function outputLink(output: JobOutput): CallToolResult['content'][number] {
  const type = mimeType(output.filename);
  return {
    type: 'resource_link',
    uri: output.url,
    name: output.filename,
    description: 'An output of the ComfyUI job: a signed, expiring gateway link that needs no token.',
    ...(type === undefined ? {} : { mimeType: type }),
  };
}

function stateLine(job: JobView): string {
  switch (job.state) {
    case 'held':
      return `Job ${job.promptId} is held: no GPU instance is ready yet; it is submitted as soon as one is (the gateway wakes the fleet).`;
    case 'submitted':
      return `Job ${job.promptId} is queued on GPU instance ${job.instanceId ?? '(unknown)'}.`;
    case 'running':
      return `Job ${job.promptId} is running on GPU instance ${job.instanceId ?? '(unknown)'}.`;
    case 'completed':
      return `Job ${job.promptId} completed with ${job.outputs.length} output file(s):`;
    case 'failed':
      return `Job ${job.promptId} failed after ${job.attempts} attempt(s): ${job.error ?? 'no reason given'}`;
  }
}

export interface JobContext {
  /** The template and seed generate_image used, reported so the caller can reproduce the image. */
  readonly workflow?: string;
  readonly seed?: number;
}

/** A job as a tool result: its state in words, the output URLs as text and as resource links. */
export function jobResult(job: JobView, context: JobContext = {}, extra: readonly string[] = []): CallToolResult {
  const lines = [stateLine(job), ...job.outputs.map((o) => o.url)];
  if (context.workflow !== undefined) lines.push(`workflow: ${context.workflow}${context.seed === undefined ? '' : `, seed: ${context.seed}`}`);
  lines.push(`job_id: ${job.promptId}`, ...extra);
  const structured = {
    job_id: job.promptId,
    state: job.state,
    error: job.error,
    attempts: job.attempts,
    instance_id: job.instanceId,
    outputs: job.outputs.map((o) => ({ filename: o.filename, subfolder: o.subfolder, type: o.type, url: o.url })),
    created_at: job.createdAt,
    updated_at: job.updatedAt,
    ...context,
  };
  return {
    content: [{ type: 'text', text: lines.join('\n') }, ...job.outputs.map(outputLink)],
    structuredContent: structured,
  };
}

export function budgetLines(budget: BudgetStatus): string[] {
  const state = budget.spent ? (budget.overridden ? 'spent, waking allowed by an operator override' : 'spent: waking the GPU is refused') : 'available';
  return [
    `GPU allowance for ${budget.month}: ${dollars(budget.usedUsd)} used of ${dollars(budget.allowanceUsd)}, ${dollars(budget.leftUsd)} left ` +
      `(about ${budget.hoursLeft.toFixed(1)} instance-hours at the dearest configured Spot price); ${state}.`,
  ];
}

function instanceLine(i: ControlInstance): string {
  const flags = [i.ready ? 'ready' : 'not ready', ...(i.leaving ? ['leaving'] : []), ...(i.busyUntil === null ? [] : [`leased until ${new Date(i.busyUntil * 1000).toISOString()}`])];
  return `  ${i.instanceId} ${i.instanceType} ${i.state}, ${flags.join(', ')}${i.launchTime === null ? '' : `, launched ${i.launchTime}`}`;
}

/** The fleet, its instances and the allowance, for gpu_status, gpu_start and gpu_stop. */
export function statusResult(status: ControlStatus, headline?: string): CallToolResult {
  const lines = [
    ...(headline === undefined ? [] : [headline]),
    `Spot Fleet ${status.fleetId}: target capacity ${status.targetCapacity}, fulfilled ${status.fulfilledCapacity}, at most ${status.maxInstances}.`,
    status.instances.length === 0 ? 'No instances (the GPU is asleep; generate_image or gpu_start wakes it).' : 'Instances:',
    ...status.instances.map(instanceLine),
    ...budgetLines(status.budget),
  ];
  return textResult(lines.join('\n'), { ...status });
}
