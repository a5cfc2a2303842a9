import { randomInt } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { z } from 'zod';
import type { ControlClient, ControlRequest, ControlResponse } from '../../lib/gpu-control/protocol';
import { GatewayError, type GatewayApi, type JobView } from './gateway-api';
import { budgetLines, jobResult, statusResult, textResult, toolError } from './mcp-results';
import { bindWorkflow, DEFAULT_WORKFLOW, TEMPLATE_ARGUMENTS, WorkflowError, type WorkflowCatalog } from './workflows';

export interface McpDeps {
  readonly api: GatewayApi;
  readonly control: ControlClient;
  readonly workflows: WorkflowCatalog;
  /** Pause between two looks at a job while generate_image waits (default 1000 ms; tests use less). */
  readonly pollIntervalMs?: number;
  /** Receives one line per tool error (the gateway's log); the lines hold no secrets, only what the caller is told. */
  readonly log?: (line: string) => void;
}

/** The longest generate_image may wait: under nginx's proxy_read_timeout, and SSE keep-alives hold the stream meanwhile. */
export const MAX_WAIT_SECONDS = 300;
const DEFAULT_POLL_INTERVAL_MS = 1000;

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

class ControlCallError extends Error {}

/** A refusal or failure as text that says what happened and why, with the gateway's code and retry hint. */
function reason(error: unknown): string {
  if (error instanceof GatewayError) {
    const retry = error.retryAfterSeconds === undefined ? '' : `; retry after ${error.retryAfterSeconds} s`;
    return `${error.message} (${error.code}${retry})`;
  }
  return error instanceof Error ? error.message : String(error);
}

type Guard = (tool: string, body: () => Promise<CallToolResult>) => Promise<CallToolResult>;

/** Runs a tool body so that any failure becomes a tool error the model can read, never a protocol error or a crash. */
function guard(log: (line: string) => void): Guard {
  return async (tool, body) => {
    let result: CallToolResult;
    try {
      result = await body();
    } catch (error) {
      const known = error instanceof GatewayError || error instanceof WorkflowError || error instanceof ControlCallError;
      result = toolError(known ? reason(error) : `${tool} failed: ${reason(error)}`);
    }
    if (result.isError === true) log(`mcp ${tool}: ${result.content.map((c) => (c.type === 'text' ? c.text : '')).join(' ').split('\n')[0]}`);
    return result;
  };
}

async function callControl(control: ControlClient, request: ControlRequest): Promise<Extract<ControlResponse, { ok: true }>> {
  const response = await control.call(request);
  if (!response.ok) throw new ControlCallError(`the control function refused ${request.action}: ${response.message} (${response.code})`);
  return response;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('the client went away'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('the client went away'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const isFinal = (job: JobView): boolean => job.state === 'completed' || job.state === 'failed';

/**
 * Looks at the job until it is final or `waitSeconds` have passed, sending a progress notification per
 * look when the client asked for them (so clients that reset their timeout on progress keep waiting).
 */
async function waitForJob(deps: McpDeps, promptId: string, waitSeconds: number, extra: Extra): Promise<JobView> {
  const interval = deps.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  const deadline = Date.now() + waitSeconds * 1000;
  const progressToken = extra._meta?.progressToken;
  for (let look = 1; ; look++) {
    const job = await deps.api.job(promptId);
    if (job === null) throw new Error(`job ${promptId} is no longer known to the gateway`);
    const left = deadline - Date.now();
    if (isFinal(job) || left <= 0) return job;
    if (progressToken !== undefined) {
      await extra.sendNotification({
        method: 'notifications/progress',
        params: { progressToken, progress: look, message: `job ${promptId} is ${job.state}` },
      });
    }
    await abortableSleep(Math.min(interval, left), extra.signal);
  }
}

const readOnly = { readOnlyHint: true, openWorldHint: false } as const;

/** One MCP server with the gateway's tools; mcp.ts makes one per HTTP request (stateless transport). */
export function createMcpServer(deps: McpDeps): McpServer {
  const guarded = guard(deps.log ?? (() => undefined));
  const server = new McpServer(
    { name: 'comfyui-gateway', version: '1.0.0' },
    {
      instructions:
        'Generates images with ComfyUI on a GPU that sleeps when idle. generate_image returns a job id at once ' +
        '(or waits up to wait_seconds); the first job after a sleep waits for the GPU to boot (minutes). ' +
        'Follow a job with get_job. Image results are URLs that need no token and expire.',
      // Every tool takes a handful of scalars: refuse oversized argument payloads before validating them.
      maxToolInputElements: 64,
    },
  );

  server.registerTool(
    'generate_image',
    {
      title: 'Generate an image',
      description:
        'Queues a ComfyUI workflow template (see list_workflows) with your prompt and settings. The GPU wakes on demand; ' +
        'while it boots the job is held, not refused. With wait_seconds 0 (default) it answers at once with the job id ' +
        '(follow it with get_job); otherwise it waits up to that long and answers with the image URLs when the job completes.',
      inputSchema: {
        workflow: z.string().min(1).max(200).default(DEFAULT_WORKFLOW).describe(`Workflow template name from list_workflows (default ${DEFAULT_WORKFLOW}).`),
        ...TEMPLATE_ARGUMENTS,
        wait_seconds: z
          .number()
          .int()
          .min(0)
          .max(MAX_WAIT_SECONDS)
          .default(0)
          .describe(`Seconds to wait for the images, 0 to ${MAX_WAIT_SECONDS}; 0 answers at once with the job id.`),
      },
      annotations: { openWorldHint: false },
    },
    (args, extra) =>
      guarded('generate_image', async () => {
        const { workflow, wait_seconds: waitSeconds, ...templateArgs } = args;
        const template = await deps.workflows.resolve(workflow);
        // A fixed seed in a template would give the same image every time: pick one unless told.
        const seed = templateArgs.seed ?? (template.parameters.includes('seed') ? randomInt(2 ** 48 - 1) : undefined);
        const prompt = bindWorkflow(template, { ...templateArgs, seed });
        const submitted = await deps.api.submitPrompt({ prompt });
        const context = { workflow: `${template.name} (${template.source})`, ...(seed === undefined ? {} : { seed }) };
        if (waitSeconds === 0) {
          const job = await deps.api.job(submitted.promptId);
          if (job !== null) return jobResult(job, context, ['Call get_job with this job_id to follow it.']);
          const state = submitted.held ? 'held until a GPU instance is ready' : 'submitted';
          return textResult(`Job ${submitted.promptId} accepted (${state}).\njob_id: ${submitted.promptId}\nCall get_job with this job_id to follow it.`, {
            job_id: submitted.promptId,
            held: submitted.held,
            ...context,
          });
        }
        const job = await waitForJob(deps, submitted.promptId, waitSeconds, extra);
        if (job.state === 'failed') return { ...jobResult(job, context), isError: true };
        const more = isFinal(job) ? [] : [`Still ${job.state} after ${waitSeconds} s; call get_job with this job_id to follow it.`];
        return jobResult(job, context, more);
      }),
  );

  server.registerTool(
    'get_job',
    {
      title: 'Get a job',
      description: 'The state of a job generate_image (or a ComfyUI client of the gateway) queued: held, submitted, running, completed with its image URLs, or failed with the reason.',
      inputSchema: { job_id: z.string().min(1).max(200).describe('The job id generate_image answered (ComfyUI\'s prompt_id).') },
      annotations: readOnly,
    },
    ({ job_id: jobId }) =>
      guarded('get_job', async () => {
        const job = await deps.api.job(jobId);
        return job === null ? toolError(`no job with id "${jobId}" is known to the gateway`) : jobResult(job);
      }),
  );

  server.registerTool(
    'list_workflows',
    {
      title: 'List workflow templates',
      description:
        'The workflow templates generate_image accepts: workflows/*.json in the asset bucket over the bundled defaults, ' +
        'with the parameters each one takes and its own default values.',
      annotations: readOnly,
    },
    () =>
      guarded('list_workflows', async () => {
        const { entries, bucketError } = await deps.workflows.list();
        const lines = entries.map((e) => {
          const origin = e.source === 'bucket' ? (e.overridesBundled ? 'bucket, overrides the bundled default' : 'bucket') : 'bundled';
          if (e.problem !== null) return `${e.name} (${origin}): unusable, ${e.problem}`;
          const defaults = Object.entries(e.defaults).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
          return `${e.name} (${origin})${e.name === DEFAULT_WORKFLOW ? ' [default]' : ''}: takes ${e.parameters.join(', ')}; defaults ${defaults || 'none'}`;
        });
        if (bucketError !== null) lines.push(`Note: the bucket's templates could not be read (${bucketError}).`);
        const workflows = entries.map((e) => ({
          name: e.name,
          source: e.source,
          overrides_bundled: e.overridesBundled,
          default: e.name === DEFAULT_WORKFLOW,
          parameters: e.parameters,
          defaults: e.defaults,
          problem: e.problem,
        }));
        return textResult(lines.join('\n'), { workflows, bucket_error: bucketError });
      }),
  );

  server.registerTool(
    'list_models',
    {
      title: 'List models',
      description: 'Model files under models/ in the asset bucket (what a GPU instance loads at boot), e.g. checkpoints/ for the checkpoint parameter of generate_image.',
      annotations: readOnly,
    },
    () =>
      guarded('list_models', async () => {
        const models = (await callControl(deps.control, { action: 'list-models' })).models ?? [];
        const lines = models.length === 0 ? ['No model files under models/ in the asset bucket.'] : models.map((m) => `${m.path} (${(m.bytes / 1e9).toFixed(2)} GB)`);
        return textResult(lines.join('\n'), { models: models.map((m) => ({ path: m.path, bytes: m.bytes })) });
      }),
  );

  server.registerTool(
    'gpu_status',
    {
      title: 'GPU status',
      description: 'The GPU Spot Fleet: target and fulfilled capacity, each instance (ready, leaving), and the month\'s GPU allowance used and left.',
      annotations: readOnly,
    },
    () => guarded('gpu_status', async () => statusResult(await deps.api.gpuStatus())),
  );

  server.registerTool(
    'gpu_start',
    {
      title: 'Start the GPU',
      description: 'Raises the fleet to at least one instance ahead of work (generate_image also wakes it). Refused once the month\'s GPU allowance is spent.',
      annotations: { idempotentHint: true, openWorldHint: false },
    },
    () => guarded('gpu_start', async () => statusResult(await deps.api.gpuStart(), 'The GPU is starting (or already running).')),
  );

  server.registerTool(
    'gpu_stop',
    {
      title: 'Stop the GPU',
      description:
        'Scales the fleet to zero once no job is held or running. With force, stops under running work too; ' +
        'those jobs are submitted again when the GPU next wakes.',
      inputSchema: { force: z.boolean().default(false).describe('Stop even while jobs run (they are resubmitted later).') },
      annotations: { destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    ({ force }) => guarded('gpu_stop', async () => statusResult(await deps.api.gpuStop(force), force ? 'Stopping the GPU now (forced).' : 'Stopping the GPU once no work is held or running.')),
  );

  server.registerTool(
    'budget_status',
    {
      title: 'GPU budget',
      description: 'The month\'s GPU allowance (monthly budget minus the fixed monthly costs): used, left, hours left, and whether waking is refused.',
      annotations: readOnly,
    },
    () =>
      guarded('budget_status', async () => {
        const { budget } = await deps.api.gpuStatus();
        return textResult(budgetLines(budget).join('\n'), { ...budget });
      }),
  );

  return server;
}
