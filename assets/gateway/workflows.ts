import { z } from 'zod';
import type { ControlClient, WorkflowTemplate } from '../../lib/gpu-control/protocol';
// Imported, not read from disk: the gateway ships as one esbuild bundle (lib/vps/gateway-program.ts),
// which inlines JSON. Both are ComfyUI's default workflow in API format, from ComfyUI's
// script_examples/basic_api_example.py (v0.3.64; the graph is the same in every stored version of that
// file), with `_meta.title`s added for the binding below and, for SDXL, the SDXL base checkpoint and
// 1024x1024 (SDXL's native size) instead of SD 1.5's 512x512.
import txt2imgSd15 from './workflows/txt2img-sd15.json';
import txt2imgSdxl from './workflows/txt2img-sdxl.json';

/**
 * Workflow templates for the MCP tools: ComfyUI API-format graphs (node id -> { class_type, inputs,
 * _meta }), from `workflows/*.json` in the asset bucket merged over the bundled defaults here (the
 * bucket wins on the same name).
 *
 * How parameters bind: a node takes a parameter when its `_meta.title` (what the ComfyUI editor shows
 * as the node's title, exported by "Export (API)"; compared trimmed and case-insensitively) is the
 * parameter's title below, and the value replaces that node's input:
 *   positive   -> text            <- prompt (required: every template needs a `positive` node)
 *   negative   -> text            <- negative_prompt
 *   size       -> width, height, batch_size
 *   sampler    -> steps, cfg, and seed (input `seed`, or `noise_seed` on KSamplerAdvanced)
 *   checkpoint -> ckpt_name       <- checkpoint (a file name under models/checkpoints/)
 * Every node with the title takes the value (a base + refiner pair can share `positive`). A parameter
 * left out keeps the template's own value. A parameter supplied to a template without a node for it,
 * or whose node lacks the input, is an error naming the template, the parameter and the fix.
 */

/** ComfyUI's class for the bound inputs (nodes.py at v0.3.64): KSampler, EmptyLatentImage, CheckpointLoaderSimple. */
export const TEMPLATE_ARGUMENTS = {
  prompt: z.string().min(1).max(10_000).describe('What the image shows (bound to the `positive` node\'s text).'),
  negative_prompt: z.string().max(10_000).optional().describe('What the image must not show (bound to the `negative` node\'s text).'),
  // ComfyUI's EmptyLatentImage allows 16..MAX_RESOLUTION in steps of 8; the gateway caps the size and
  // batch so one call cannot run the GPU allowance down.
  width: z.number().int().min(64).max(4096).multipleOf(8).optional().describe('Image width in pixels, a multiple of 8 from 64 to 4096.'),
  height: z.number().int().min(64).max(4096).multipleOf(8).optional().describe('Image height in pixels, a multiple of 8 from 64 to 4096.'),
  batch_size: z.number().int().min(1).max(8).optional().describe('Images per job, 1 to 8.'),
  // KSampler: steps 1..10000 and cfg 0..100 in ComfyUI; seed 0..2^64-1 there, a JSON-safe integer here.
  steps: z.number().int().min(1).max(200).optional().describe('Sampling steps, 1 to 200.'),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Noise seed; omitted means a random one (reported in the answer).'),
  cfg: z.number().min(0).max(100).optional().describe('Classifier-free guidance scale, 0 to 100.'),
  checkpoint: z
    .string()
    .min(1)
    .max(255)
    .refine((name) => !name.split(/[\\/]/).includes('..') && !name.startsWith('/'), 'a file name below models/checkpoints/, without ".." or a leading "/"')
    .optional()
    .describe('Checkpoint file below models/checkpoints/ (see list_models); omitted keeps the template\'s.'),
};

export type TemplateArguments = z.infer<z.ZodObject<typeof TEMPLATE_ARGUMENTS>>;
export type TemplateParameter = keyof typeof TEMPLATE_ARGUMENTS;

/** Which node title and which of its inputs (first one present) take each parameter. */
export const PARAMETER_BINDINGS: Readonly<Record<TemplateParameter, { readonly title: string; readonly inputs: readonly string[] }>> = {
  prompt: { title: 'positive', inputs: ['text'] },
  negative_prompt: { title: 'negative', inputs: ['text'] },
  width: { title: 'size', inputs: ['width'] },
  height: { title: 'size', inputs: ['height'] },
  batch_size: { title: 'size', inputs: ['batch_size'] },
  steps: { title: 'sampler', inputs: ['steps'] },
  seed: { title: 'sampler', inputs: ['seed', 'noise_seed'] },
  cfg: { title: 'sampler', inputs: ['cfg'] },
  checkpoint: { title: 'checkpoint', inputs: ['ckpt_name'] },
};

const PARAMETERS = Object.keys(PARAMETER_BINDINGS) as TemplateParameter[];

/** The template generate_image uses when none is named. */
export const DEFAULT_WORKFLOW = 'txt2img-sdxl';

/** The bundled defaults; test/gateway/workflows.test.ts checks that every workflows/*.json is listed. */
export const BUNDLED_WORKFLOWS: readonly WorkflowTemplate[] = [
  { name: 'txt2img-sdxl', workflow: txt2imgSdxl },
  { name: 'txt2img-sd15', workflow: txt2imgSd15 },
];

/** How long the bucket's list is reused before the control function is asked again. */
export const WORKFLOW_CACHE_MS = 5 * 60_000;

export class WorkflowError extends Error {
  override readonly name = 'WorkflowError';
}

/** One ComfyUI API-format node; `_meta` is what ComfyUI's editor exports and its server ignores. */
const nodeSchema = z.looseObject({
  class_type: z.string().min(1),
  inputs: z.record(z.string(), z.unknown()),
  _meta: z.looseObject({ title: z.string().optional() }).optional(),
});
const graphSchema = z.record(z.string(), nodeSchema).refine((graph) => Object.keys(graph).length > 0, 'the graph has no nodes');

type ApiNode = z.infer<typeof nodeSchema>;
type ApiGraph = Record<string, ApiNode>;

/** Why `workflow` is not a ComfyUI API-format graph, or null when it is. */
export function graphProblem(workflow: unknown): string | null {
  if (workflow !== null && typeof workflow === 'object' && Array.isArray((workflow as { nodes?: unknown }).nodes)) {
    return 'it is in the editor format (nodes/links); export it from ComfyUI with "Export (API)" instead';
  }
  const parsed = graphSchema.safeParse(workflow);
  if (parsed.success) return null;
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? `node ${issue.path.map(String).join('.')}: ` : '';
  return `it is not a ComfyUI API-format graph (node id -> { class_type, inputs }): ${where}${issue.message}`;
}

const titleOf = (node: ApiNode): string => (node._meta?.title ?? '').trim().toLowerCase();

function nodesTitled(graph: ApiGraph, title: string): Array<[string, ApiNode]> {
  return Object.entries(graph).filter(([, node]) => titleOf(node) === title);
}

/** The input of `node` that takes `parameter`, or undefined when it has none of the candidates. */
function boundInput(node: ApiNode, parameter: TemplateParameter): string | undefined {
  return PARAMETER_BINDINGS[parameter].inputs.find((input) => Object.hasOwn(node.inputs, input));
}

/** Parameters `workflow` can take: a node with the title exists and every such node has the input. */
export function bindableParameters(workflow: Record<string, unknown>): TemplateParameter[] {
  if (graphProblem(workflow) !== null) return [];
  const graph = workflow as ApiGraph;
  return PARAMETERS.filter((parameter) => {
    const nodes = nodesTitled(graph, PARAMETER_BINDINGS[parameter].title);
    return nodes.length > 0 && nodes.every(([, node]) => boundInput(node, parameter) !== undefined);
  });
}

/** The template's own values of its bindable parameters (from the first node with the title), for list_workflows. */
export function templateDefaults(workflow: Record<string, unknown>): Partial<Record<TemplateParameter, unknown>> {
  const graph = workflow as ApiGraph;
  const defaults: Partial<Record<TemplateParameter, unknown>> = {};
  for (const parameter of bindableParameters(workflow)) {
    if (parameter === 'prompt') continue; // always supplied
    const [, node] = nodesTitled(graph, PARAMETER_BINDINGS[parameter].title)[0];
    const value = node.inputs[boundInput(node, parameter) as string];
    if (!Array.isArray(value)) defaults[parameter] = value; // an array is a link to another node's output
  }
  return defaults;
}

/**
 * A copy of the template's graph with the supplied arguments bound (see the rules at the top).
 * Throws WorkflowError naming the template, the parameter and what to change.
 */
export function bindWorkflow(template: WorkflowTemplate, args: TemplateArguments): Record<string, unknown> {
  const problem = graphProblem(template.workflow);
  if (problem !== null) throw new WorkflowError(`workflow template "${template.name}" cannot be used: ${problem}`);
  const graph = structuredClone(template.workflow) as ApiGraph;
  for (const parameter of PARAMETERS) {
    const value = args[parameter];
    if (value === undefined) continue;
    const { title, inputs } = PARAMETER_BINDINGS[parameter];
    const nodes = nodesTitled(graph, title);
    if (nodes.length === 0) {
      throw new WorkflowError(
        `workflow template "${template.name}" has no node titled "${title}" to take ${parameter}; ` +
          (parameter === 'prompt' ? `title its prompt's text node "${title}"` : `leave ${parameter} out, or title a node "${title}" in the template`),
      );
    }
    for (const [id, node] of nodes) {
      const input = boundInput(node, parameter);
      if (input === undefined) {
        throw new WorkflowError(
          `workflow template "${template.name}": node ${id} (${node.class_type}, titled "${title}") has no input ${inputs.map((i) => `"${i}"`).join(' or ')} to take ${parameter}; ` +
            `leave ${parameter} out, or give that title to a node with the input`,
        );
      }
      node.inputs[input] = value;
    }
  }
  return graph;
}

export interface CatalogEntry extends WorkflowTemplate {
  readonly source: 'bucket' | 'bundled';
  /** A bucket template with a bundled default's name (the bucket's wins). */
  readonly overridesBundled: boolean;
  /** Why the template cannot be used (not an API-format graph), or null. */
  readonly problem: string | null;
  readonly parameters: readonly TemplateParameter[];
  readonly defaults: Partial<Record<TemplateParameter, unknown>>;
}

export interface CatalogListing {
  readonly entries: readonly CatalogEntry[];
  /** Why the bucket's templates could not be read (only the bundled ones, or an older copy, are listed), or null. */
  readonly bucketError: string | null;
}

export interface WorkflowCatalogOptions {
  readonly bundled?: readonly WorkflowTemplate[];
  readonly cacheMs?: number;
  readonly now?: () => number;
}

function entry(template: WorkflowTemplate, source: CatalogEntry['source'], overridesBundled: boolean): CatalogEntry {
  const problem = graphProblem(template.workflow);
  const usable = problem === null;
  return {
    ...template,
    source,
    overridesBundled,
    problem,
    parameters: usable ? bindableParameters(template.workflow) : [],
    defaults: usable ? templateDefaults(template.workflow) : {},
  };
}

/** The templates generate_image can use: the bucket's (through the control function, cached) over the bundled ones. */
export class WorkflowCatalog {
  private readonly bundled: readonly WorkflowTemplate[];
  private readonly cacheMs: number;
  private readonly now: () => number;
  private cached: { readonly at: number; readonly templates: readonly WorkflowTemplate[] } | undefined;
  private inFlight: Promise<{ templates: readonly WorkflowTemplate[]; error: string | null }> | undefined;

  constructor(private readonly control: ControlClient, options: WorkflowCatalogOptions = {}) {
    this.bundled = options.bundled ?? BUNDLED_WORKFLOWS;
    this.cacheMs = options.cacheMs ?? WORKFLOW_CACHE_MS;
    this.now = options.now ?? Date.now;
  }

  async list(): Promise<CatalogListing> {
    const bucket = await this.bucketTemplates();
    const bundledNames = new Set(this.bundled.map((t) => t.name));
    const bucketNames = new Set(bucket.templates.map((t) => t.name));
    const entries = [
      ...bucket.templates.map((t) => entry(t, 'bucket', bundledNames.has(t.name))),
      ...this.bundled.filter((t) => !bucketNames.has(t.name)).map((t) => entry(t, 'bundled', false)),
    ].sort((a, b) => a.name.localeCompare(b.name));
    return { entries, bucketError: bucket.error };
  }

  /** The usable template called `name`; WorkflowError names the templates there are when it is missing or unusable. */
  async resolve(name: string): Promise<CatalogEntry> {
    const { entries, bucketError } = await this.list();
    const found = entries.find((e) => e.name === name);
    if (found === undefined) {
      const known = entries.map((e) => e.name).join(', ');
      const unread = bucketError === null ? '' : ` (the bucket's templates could not be read: ${bucketError})`;
      throw new WorkflowError(`no workflow template "${name}"; there are: ${known}${unread}`);
    }
    if (found.problem !== null) throw new WorkflowError(`workflow template "${name}" (${found.source}) cannot be used: ${found.problem}`);
    return found;
  }

  /** The bucket's templates, fetched at most once per cacheMs; a failed fetch keeps serving the last good copy. */
  private async bucketTemplates(): Promise<{ templates: readonly WorkflowTemplate[]; error: string | null }> {
    if (this.cached !== undefined && this.now() - this.cached.at < this.cacheMs) return { templates: this.cached.templates, error: null };
    // One call for everyone asking while it runs.
    this.inFlight ??= this.fetchBucket().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchBucket(): Promise<{ templates: readonly WorkflowTemplate[]; error: string | null }> {
    let error: string;
    try {
      const response = await this.control.call({ action: 'list-workflows' });
      if (response.ok && response.workflows !== undefined) {
        this.cached = { at: this.now(), templates: response.workflows };
        return { templates: response.workflows, error: null };
      }
      error = response.ok ? 'the control function answered list-workflows without workflows' : `${response.code}: ${response.message}`;
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    return { templates: this.cached?.templates ?? [], error };
  }
}
