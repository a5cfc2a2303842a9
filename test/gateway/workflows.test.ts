import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  bindableParameters,
  bindWorkflow,
  BUNDLED_WORKFLOWS,
  DEFAULT_WORKFLOW,
  graphProblem,
  PARAMETER_BINDINGS,
  templateDefaults,
  WORKFLOW_CACHE_MS,
  WorkflowCatalog,
  WorkflowError,
} from '../../assets/gateway/workflows';
import type { WorkflowTemplate } from '../../lib/gpu-control/protocol';
import { FakeControlClient } from './support/fake-gateway-api';

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: { title?: string } }>;

const WORKFLOWS_DIR = path.join(__dirname, '..', '..', 'assets', 'gateway', 'workflows');
const bundled = (name: string): WorkflowTemplate => {
  const found = BUNDLED_WORKFLOWS.find((t) => t.name === name);
  if (found === undefined) throw new Error(`no bundled ${name}`);
  return found;
};
const inputs = (graph: Record<string, unknown>, id: string): Record<string, unknown> => (graph as Graph)[id].inputs;
const ALL_PARAMETERS = Object.keys(PARAMETER_BINDINGS).sort();

describe('the bundled templates', () => {
  test('every workflows/*.json is bundled (imported, so esbuild inlines it) and the default is one of them', () => {
    const files = fs.readdirSync(WORKFLOWS_DIR).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
    expect(BUNDLED_WORKFLOWS.map((t) => t.name).sort()).toEqual(files);
    expect(files).toEqual(expect.arrayContaining(['txt2img-sd15', 'txt2img-sdxl', DEFAULT_WORKFLOW]));
    for (const file of files) {
      expect(JSON.parse(fs.readFileSync(path.join(WORKFLOWS_DIR, `${file}.json`), 'utf8'))).toEqual(bundled(file).workflow);
    }
  });

  test.each(['txt2img-sd15', 'txt2img-sdxl'])('%s is ComfyUI\'s default graph in API format and takes every parameter', (name) => {
    const { workflow } = bundled(name);
    expect(graphProblem(workflow)).toBeNull();
    // basic_api_example.py's default workflow: nodes 3..9 and their classes.
    const classes = Object.fromEntries(Object.entries(workflow as Graph).map(([id, node]) => [id, node.class_type]));
    expect(classes).toEqual({ 3: 'KSampler', 4: 'CheckpointLoaderSimple', 5: 'EmptyLatentImage', 6: 'CLIPTextEncode', 7: 'CLIPTextEncode', 8: 'VAEDecode', 9: 'SaveImage' });
    expect([...bindableParameters(workflow)].sort()).toEqual(ALL_PARAMETERS);
  });

  test('checkpoint and size default to the SDXL base at 1024 and SD 1.5 at 512', () => {
    expect(templateDefaults(bundled('txt2img-sdxl').workflow)).toMatchObject({ checkpoint: 'sd_xl_base_1.0.safetensors', width: 1024, height: 1024, batch_size: 1, steps: 20, cfg: 8 });
    expect(templateDefaults(bundled('txt2img-sd15').workflow)).toMatchObject({ checkpoint: 'v1-5-pruned-emaonly.safetensors', width: 512, height: 512 });
  });
});

describe('binding parameters', () => {
  test('each parameter lands in the input of the node with its title; the template itself is left alone', () => {
    const template = bundled('txt2img-sd15');
    const before = structuredClone(template.workflow);
    const graph = bindWorkflow(template, {
      prompt: 'a lighthouse at dusk',
      negative_prompt: 'blurry',
      width: 768,
      height: 512,
      batch_size: 2,
      steps: 30,
      seed: 42,
      cfg: 6.5,
      checkpoint: 'dreamshaper_8.safetensors',
    });
    expect(inputs(graph, '6')).toEqual({ clip: ['4', 1], text: 'a lighthouse at dusk' });
    expect(inputs(graph, '7')).toEqual({ clip: ['4', 1], text: 'blurry' });
    expect(inputs(graph, '5')).toEqual({ width: 768, height: 512, batch_size: 2 });
    expect(inputs(graph, '3')).toMatchObject({ steps: 30, seed: 42, cfg: 6.5, sampler_name: 'euler', latent_image: ['5', 0] });
    expect(inputs(graph, '4')).toEqual({ ckpt_name: 'dreamshaper_8.safetensors' });
    expect(template.workflow).toEqual(before);
  });

  test('parameters left out keep the template\'s values', () => {
    const template = bundled('txt2img-sdxl');
    const graph = bindWorkflow(template, { prompt: 'a cat' });
    expect(inputs(graph, '6').text).toBe('a cat');
    expect(inputs(graph, '7').text).toBe(inputs(template.workflow, '7').text);
    expect(inputs(graph, '3').seed).toBe(8566257);
    expect(inputs(graph, '4').ckpt_name).toBe('sd_xl_base_1.0.safetensors');
  });

  const custom: Graph = {
    '10': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'base.safetensors' }, _meta: { title: 'Load Checkpoint' } },
    '11': { class_type: 'CLIPTextEncode', inputs: { clip: ['10', 1], text: '' }, _meta: { title: '  Positive ' } },
    '12': { class_type: 'CLIPTextEncode', inputs: { clip: ['10', 1], text: '' }, _meta: { title: 'POSITIVE' } },
    '13': { class_type: 'KSamplerAdvanced', inputs: { noise_seed: 1, steps: 20, cfg: 7 }, _meta: { title: 'sampler' } },
    '14': { class_type: 'EmptySD3LatentImage', inputs: { width: 1024, height: 1024 }, _meta: { title: 'size' } },
  };
  const customTemplate: WorkflowTemplate = { name: 'my-refiner', workflow: custom };

  test('titles match trimmed and case-insensitively, every node with the title takes the value, and KSamplerAdvanced takes seed as noise_seed', () => {
    const graph = bindWorkflow(customTemplate, { prompt: 'a fox', seed: 7, width: 832 });
    expect(inputs(graph, '11').text).toBe('a fox');
    expect(inputs(graph, '12').text).toBe('a fox');
    expect(inputs(graph, '13')).toEqual({ noise_seed: 7, steps: 20, cfg: 7 });
    expect(inputs(graph, '14')).toEqual({ width: 832, height: 1024 });
    expect([...bindableParameters(custom)].sort()).toEqual(['cfg', 'height', 'prompt', 'seed', 'steps', 'width']);
  });

  test('a supplied parameter without a node for it is an error naming the template, the parameter and the title', () => {
    expect(() => bindWorkflow(customTemplate, { prompt: 'a fox', negative_prompt: 'rain' })).toThrow(
      new WorkflowError('workflow template "my-refiner" has no node titled "negative" to take negative_prompt; leave negative_prompt out, or title a node "negative" in the template'),
    );
    expect(() => bindWorkflow(customTemplate, { prompt: 'a fox', checkpoint: 'x.safetensors' })).toThrow(/"my-refiner" has no node titled "checkpoint" to take checkpoint/);
  });

  test('a titled node without the input is an error naming the node and the input', () => {
    expect(() => bindWorkflow(customTemplate, { prompt: 'a fox', batch_size: 2 })).toThrow(
      'workflow template "my-refiner": node 14 (EmptySD3LatentImage, titled "size") has no input "batch_size" to take batch_size; leave batch_size out, or give that title to a node with the input',
    );
  });

  test('a template without a positive node cannot take the prompt', () => {
    const { '11': _a, '12': _b, ...noPrompt } = custom;
    expect(() => bindWorkflow({ name: 'silent', workflow: noPrompt }, { prompt: 'a fox' })).toThrow(
      'workflow template "silent" has no node titled "positive" to take prompt; title its prompt\'s text node "positive"',
    );
  });

  test('a graph in the editor format, or not a graph, is refused with what to do', () => {
    const editor = { last_node_id: 9, nodes: [{ id: 3, type: 'KSampler' }], links: [] };
    expect(() => bindWorkflow({ name: 'ui-export', workflow: editor }, { prompt: 'x' })).toThrow(
      'workflow template "ui-export" cannot be used: it is in the editor format (nodes/links); export it from ComfyUI with "Export (API)" instead',
    );
    expect(graphProblem({ '3': { inputs: {} } })).toMatch(/^it is not a ComfyUI API-format graph .*node 3\.class_type/);
    expect(graphProblem({})).toMatch(/the graph has no nodes/);
  });
});

describe('the catalog', () => {
  const bucketSdxl: WorkflowTemplate = {
    name: 'txt2img-sdxl',
    workflow: { ...bundled('txt2img-sdxl').workflow, '3': { ...(bundled('txt2img-sdxl').workflow as Graph)['3'], inputs: { ...inputs(bundled('txt2img-sdxl').workflow, '3'), steps: 35 } } },
  };
  const bucketOwn: WorkflowTemplate = { name: 'portrait', workflow: bundled('txt2img-sd15').workflow };

  function setup(): { control: FakeControlClient; catalog: WorkflowCatalog; clock: { now: number } } {
    const control = new FakeControlClient();
    control.workflows = [bucketSdxl, bucketOwn, { name: 'ui-export', workflow: { nodes: [], links: [] } }];
    const clock = { now: 1_000_000 };
    return { control, catalog: new WorkflowCatalog(control, { now: () => clock.now }), clock };
  }

  test('bucket templates are merged over the bundled ones; the bucket wins on a name', async () => {
    const { catalog } = setup();
    const { entries, bucketError } = await catalog.list();
    expect(bucketError).toBeNull();
    expect(entries.map((e) => [e.name, e.source, e.overridesBundled])).toEqual([
      ['portrait', 'bucket', false],
      ['txt2img-sd15', 'bundled', false],
      ['txt2img-sdxl', 'bucket', true],
      ['ui-export', 'bucket', false],
    ]);
    expect((await catalog.resolve('txt2img-sdxl')).defaults.steps).toBe(35);
    expect(entries.find((e) => e.name === 'ui-export')?.problem).toMatch(/editor format/);
    await expect(catalog.resolve('ui-export')).rejects.toThrow('workflow template "ui-export" (bucket) cannot be used: it is in the editor format');
    await expect(catalog.resolve('nope')).rejects.toThrow('no workflow template "nope"; there are: portrait, txt2img-sd15, txt2img-sdxl, ui-export');
  });

  test('the bucket is asked once per 5 minutes, and once for concurrent callers', async () => {
    const { control, catalog, clock } = setup();
    await Promise.all([catalog.list(), catalog.list(), catalog.resolve('portrait')]);
    expect(control.callsOf('list-workflows')).toBe(1);
    clock.now += WORKFLOW_CACHE_MS - 1;
    await catalog.list();
    expect(control.callsOf('list-workflows')).toBe(1);
    control.workflows = [];
    clock.now += 1;
    const { entries } = await catalog.list();
    expect(control.callsOf('list-workflows')).toBe(2);
    expect(entries.map((e) => [e.name, e.source])).toEqual([
      ['txt2img-sd15', 'bundled'],
      ['txt2img-sdxl', 'bundled'],
    ]);
  });

  test('when the bucket cannot be read, the last good copy (or the bundled ones) is served with the reason', async () => {
    const { control, catalog, clock } = setup();
    control.failure = new Error('Lambda invoke timed out');
    const first = await catalog.list();
    expect(first.bucketError).toBe('Lambda invoke timed out');
    expect(first.entries.map((e) => e.source)).toEqual(['bundled', 'bundled']);
    await expect(catalog.resolve('portrait')).rejects.toThrow('no workflow template "portrait"; there are: txt2img-sd15, txt2img-sdxl (the bucket\'s templates could not be read: Lambda invoke timed out)');

    control.failure = undefined;
    await catalog.list();
    clock.now += WORKFLOW_CACHE_MS;
    control.refusal = { ok: false, code: 'FLEET_GONE', message: 'the fleet request sfr-x no longer exists' };
    const stale = await catalog.list();
    expect(stale.bucketError).toBe('FLEET_GONE: the fleet request sfr-x no longer exists');
    expect(stale.entries.find((e) => e.name === 'portrait')?.source).toBe('bucket');
  });
});
