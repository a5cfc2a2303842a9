import * as fs from 'node:fs';
import * as path from 'node:path';
import { addEnvironment, createApp } from './app';
import { loadEnvironment, type EnvironmentConfig } from './config/load';

/** A CloudFormation template as synthesized (only the parts the tools read are typed). */
export interface CfnTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; [key: string]: unknown }>;
  [section: string]: unknown;
}

/** One cdk-nag finding that was not acknowledged. */
export interface NagViolation {
  readonly rule: string;
  readonly path: string;
  readonly description: string;
}

export interface SynthResult {
  readonly envName: string;
  readonly outdir: string;
  /** Stack name to template, in manifest order. */
  readonly templates: Record<string, CfnTemplate>;
  readonly violations: NagViolation[];
  /** Warnings and infos the app itself annotated (CDK lists them in the same report); not failures. */
  readonly annotations: NagViolation[];
}

/** CDK reports construct annotations as a pseudo-plugin of the validation report. */
const ANNOTATIONS_PLUGIN = 'Construct Annotations';

interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; description: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

/**
 * Synthesizes one environment into `outdir` exactly as `cdk synth -c env=<name>`
 * does (same app code, same cdk.json context), and collects cdk-nag's verdict
 * instead of throwing, so callers decide how to report it.
 */
export function synthEnvironment(envName: string, outdir: string): SynthResult {
  return synthConfig(loadEnvironment(envName), outdir);
}

/** Synthesizes an already validated environment config (tests use it for variations of an environment). */
export function synthConfig(config: EnvironmentConfig, outdir: string): SynthResult {
  const envName = config.envName;
  fs.rmSync(outdir, { recursive: true, force: true });
  const app = createApp({ outdir, context: { env: envName } });
  addEnvironment(app, config);
  try {
    app.synth();
  } catch (error) {
    // cdk-nag fails synth through CDK's policy validation; the report says why.
    if (!fs.existsSync(path.join(outdir, 'validation-report.json'))) throw error;
  }
  return readSynthResult(envName, outdir);
}

/** Reads an environment's cloud assembly that was synthesized earlier (templates and cdk-nag's verdict). */
export function readSynthResult(envName: string, outdir: string): SynthResult {
  const report = readReport(outdir);
  return {
    envName,
    outdir,
    templates: readTemplates(outdir),
    violations: violationsOf(report.filter((p) => p.pluginName !== ANNOTATIONS_PLUGIN)),
    annotations: violationsOf(report.filter((p) => p.pluginName === ANNOTATIONS_PLUGIN)),
  };
}

/** Every stack template of a cloud assembly folder, keyed by stack name. */
export function readTemplates(outdir: string): Record<string, CfnTemplate> {
  const manifest = JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
    artifacts: Record<string, { type: string; displayName?: string; properties?: { templateFile?: string } }>;
  };
  const templates: Record<string, CfnTemplate> = {};
  for (const [id, artifact] of Object.entries(manifest.artifacts)) {
    if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) continue;
    templates[artifact.displayName ?? id] = JSON.parse(
      fs.readFileSync(path.join(outdir, artifact.properties.templateFile), 'utf8'),
    ) as CfnTemplate;
  }
  return templates;
}

function readReport(outdir: string): ValidationReport['pluginReports'] {
  const file = path.join(outdir, 'validation-report.json');
  if (!fs.existsSync(file)) return [];
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as ValidationReport).pluginReports;
}

function violationsOf(plugins: ValidationReport['pluginReports']): NagViolation[] {
  return plugins.flatMap((plugin) =>
    plugin.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({ rule: v.ruleName, path: c.constructPath, description: v.description })),
    ),
  );
}
