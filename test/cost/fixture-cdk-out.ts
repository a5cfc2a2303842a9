import * as fs from 'node:fs';
import * as path from 'node:path';
import { ENVIRONMENT_NAMES } from '../../lib/config/environments';
import type { CfnTemplate } from '../../lib/synth';
import { tempDir } from '../support/synth';

export const FIXTURE_DIR = path.join(__dirname, 'fixtures', 'small-env');

/** The hand-written fixture templates under each environment's stack names (AiAssets-<env>-...). */
export function fixtureTemplates(env: string): Record<string, CfnTemplate> {
  return Object.fromEntries(
    fs
      .readdirSync(FIXTURE_DIR)
      .filter((f) => f.endsWith('.template.json'))
      .map((f) => [f.replace('Fx-fx-', `AiAssets-${env}-`).replace('.template.json', ''), JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, f), 'utf8')) as CfnTemplate]),
  );
}

/** A cloud assembly folder per environment (<dir>/<env>/manifest.json) built from the fixture templates. */
export function fixtureCdkOut(): string {
  const dir = tempDir('cdk-out-');
  for (const env of ENVIRONMENT_NAMES) {
    const envDir = path.join(dir, env);
    fs.mkdirSync(envDir);
    const artifacts: Record<string, unknown> = {};
    for (const [stack, template] of Object.entries(fixtureTemplates(env))) {
      fs.writeFileSync(path.join(envDir, `${stack}.template.json`), JSON.stringify(template));
      artifacts[stack] = { type: 'aws:cloudformation:stack', displayName: stack, properties: { templateFile: `${stack}.template.json` } };
    }
    fs.writeFileSync(path.join(envDir, 'manifest.json'), JSON.stringify({ version: '1', artifacts }));
  }
  return dir;
}
