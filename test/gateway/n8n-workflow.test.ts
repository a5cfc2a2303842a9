import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { workflow } from './support/comfy-api-client';
import { useGatewayWorld } from './support/gateway-world';

/**
 * The README's n8n workflow, imported and run by real n8n (the npm package, installed by
 * scripts/test-all.sh from test/tools/n8n/) against the gateway with the fleet at 0: the
 * user's steps (Workflows → Import from file, paste the API-format workflow, run) as n8n's
 * own CLI does them (`import:workflow`, then `execute --id`).
 */
jest.setTimeout(300_000);
const run = promisify(execFile);
const world = useGatewayWorld();

const ROOT = path.join(__dirname, '..', '..');
const N8N = path.join(ROOT, '.venv-test-tools', 'n8n', 'node_modules', 'n8n', 'bin', 'n8n');
/** The n8n the compose stack runs; the test's npm package is the nearest one the registry serves. */
const COMPOSE_N8N = /image: n8nio\/n8n:(\S+)/.exec(fs.readFileSync(path.join(ROOT, 'assets', 'compose', 'docker-compose.yml'), 'utf8'))![1];

/** The JSON block under "### n8n against a sleeping GPU" in the README. */
function readmeWorkflow(): { nodes: Array<{ name: string; type: string; parameters: Record<string, unknown> }>; [key: string]: unknown } {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### n8n against a sleeping GPU'));
  const block = /```json\n([\s\S]*?)\n```/.exec(section);
  if (!block) throw new Error('README: no json block under "### n8n against a sleeping GPU"');
  return JSON.parse(block[1]);
}

/** An n8n instance of its own: user folder (SQLite database, settings) in a temp dir, no outside calls. */
function n8nEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    N8N_USER_FOLDER: home,
    N8N_DIAGNOSTICS_ENABLED: 'false',
    N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
    N8N_TEMPLATES_ENABLED: 'false',
    N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'false',
    // `execute --rawOutput` prints the execution through n8n's logger at level info.
    N8N_LOG_LEVEL: 'info',
    // The HTTP Request node is the only outside call, to the gateway on loopback.
    NO_PROXY: '127.0.0.1',
  };
}

test('the README workflow, imported into real n8n, completes against a sleeping GPU', async () => {
  expect(fs.existsSync(N8N)).toBe(true); // installed by scripts/test-all.sh (test/tools/n8n)
  const installed = (JSON.parse(fs.readFileSync(path.join(path.dirname(N8N), '..', 'package.json'), 'utf8')) as { version: string }).version;
  expect(installed.split('.').slice(0, 2)).toEqual(COMPOSE_N8N.split('.').slice(0, 2));

  const w = await world({ boxes: { standIn: { msPerPrompt: 20, steps: 1 } } });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'n8n-'));
  try {
    // What a user does after import: paste the API-format workflow into the "ComfyUI workflow"
    // node. n8n runs on the VPS's compose network, where the gateway is http://gateway:9000;
    // here it is the test's gateway on loopback.
    const doc = readmeWorkflow();
    const text = JSON.stringify(doc).replaceAll('http://gateway:9000/comfyui', w.comfy);
    const imported = JSON.parse(text) as ReturnType<typeof readmeWorkflow>;
    const paste = imported.nodes.find((n) => n.name === 'ComfyUI workflow');
    expect(paste?.type).toBe('n8n-nodes-base.set');
    paste!.parameters.jsonOutput = JSON.stringify({ workflow: workflow(7) }, null, 2);
    const file = path.join(home, 'workflow.json');
    fs.writeFileSync(file, JSON.stringify({ ...imported, id: 'GatewayReadme001', active: false }));

    const env = n8nEnv(home);
    await run(process.execPath, [N8N, 'import:workflow', `--input=${file}`], { env, timeout: 120_000 });
    const { stdout, stderr } = await run(process.execPath, [N8N, 'execute', '--id=GatewayReadme001', '--rawOutput'], {
      env,
      timeout: 240_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    // The execution is the one JSON document printed from column 0 (migrations log before it).
    const json = /^\{\n[\s\S]*?^\}$/m.exec(stdout)?.[0];
    if (!json) throw new Error(`n8n execute printed no execution:\n${stdout}\n${stderr}\n${w.logs.join('\n')}`);
    const result = JSON.parse(json) as {
      status: string;
      data: { resultData: { runData: Record<string, Array<{ data: { main: Array<Array<{ json: Record<string, unknown> }> | null> } }>> } };
    };
    expect(result.status).toBe('success');
    const runs = result.data.resultData.runData;

    // The GPU was asleep: one wake, and the prompt the gateway held ran on the box it woke.
    expect(w.control.capacityChanges()).toEqual([1]);
    const queued = runs['Queue prompt'][0].data.main[0]![0].json as { prompt_id: string; node_errors: object };
    expect(queued.node_errors).toEqual({});
    const [box] = w.boxes.launched;
    expect(w.boxes.boxes.get(box)!.standIn.received.map((r) => r.promptId)).toEqual([queued.prompt_id]);

    // "Done?" let the history through on its true branch: ComfyUI's record with the saved image.
    const done = runs['Done?'].at(-1)!.data.main[0]![0].json as Record<string, { status: { status_str: string }; outputs: Record<string, { images: unknown[] }> }>;
    expect(Object.keys(done)).toEqual([queued.prompt_id]);
    expect(done[queued.prompt_id].status.status_str).toBe('success');
    expect(done[queued.prompt_id].outputs['9'].images).toHaveLength(1);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
