import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BASE_IMAGE_PACKAGES,
  COMFYUI_BASE_IMAGE,
  COMFYUI_CONTAINER_PORT,
  COMFYUI_CONTAINER_USER,
  COMFYUI_ENTRYPOINT,
  COMFYUI_HEALTH_PATH,
  COMFYUI_IMAGE_DIR,
  COMFYUI_PATHS,
  COMFYUI_RELEASE,
} from '../lib/comfyui-image';

/*
 * No Docker engine and no registry here, so the image is checked from its definition. The parser
 * follows the Dockerfile reference (docs.docker.com/reference/dockerfile): `#` lines are comments (also
 * inside a continuation), a trailing `\` continues the line, ARG defaults substitute `$NAME`/`${NAME}`,
 * and ENTRYPOINT/CMD are exec form only when their argument is a JSON array of strings.
 */

const read = (name: string): string => fs.readFileSync(path.join(COMFYUI_IMAGE_DIR, name), 'utf8');
const DOCKERFILE = read('Dockerfile');
const LOCK = read('requirements.lock');
const UPSTREAM_REQUIREMENTS_FILE = `comfyui-${COMFYUI_RELEASE.tag}-requirements.txt`;
const UPSTREAM_REQUIREMENTS = read(UPSTREAM_REQUIREMENTS_FILE);

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  image: string;
  name?: string;
  args: Map<string, string>;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && pending === '')) return;
    if (pending === '') start = index + 1;
    if (/\\\s*$/.test(raw)) {
      pending += `${raw.replace(/\\\s*$/, '')} `;
      return;
    }
    const [, keyword, args] = /^\s*(\S+)\s*([\s\S]*)$/.exec(pending + raw) ?? [];
    instructions.push({ keyword: (keyword ?? '').toUpperCase(), args: (args ?? '').trim(), line: start });
    pending = '';
  });
  if (pending !== '') throw new Error(`Dockerfile ends inside the line continuation that starts on line ${start}`);
  return instructions;
}

function substitute(text: string, args: Map<string, string>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => args.get(braced ?? bare ?? '') ?? whole);
}

function stagesOf(text: string): Stage[] {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of parseDockerfile(text)) {
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = instruction.args.split(/\s+/).filter((token) => !token.startsWith('--'));
      stages.push({ image: substitute(image, globalArgs), name: as?.toUpperCase() === 'AS' ? name : undefined, args: new Map(), instructions: [] });
      continue;
    }
    const stage = stages[stages.length - 1];
    const [, argName, argValue] = instruction.keyword === 'ARG' ? /^(\w+)(?:=(\S*))?$/.exec(instruction.args) ?? [] : [];
    // Inside a stage, a bare `ARG NAME` takes the global default (Dockerfile reference, "Scope").
    if (argName) (stage?.args ?? globalArgs).set(argName, argValue ?? globalArgs.get(argName) ?? '');
    if (stage) stage.instructions.push({ ...instruction, args: substitute(instruction.args, stage.args) });
  }
  return stages;
}

/** The argument of an exec-form instruction, or undefined for shell form. */
function execForm(args: string): string[] | undefined {
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((part) => typeof part === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** RUN's command without its `--mount`/`--network` flags. */
const runCommand = (args: string): string => args.replace(/^(--\S+\s+)*/, '');

const finalStage = (stages: Stage[]): Stage => {
  const stage = stages[stages.length - 1];
  if (!stage) throw new Error('the Dockerfile has no FROM');
  return stage;
};

const last = (stage: Stage, keyword: string): Instruction | undefined =>
  stage.instructions.filter((instruction) => instruction.keyword === keyword).pop();

/** Where `COPY requirements.lock <dest>` puts the lock: the only file pip may install from. */
function lockPathIn(stage: Stage): string | undefined {
  const copy = stage.instructions.find((i) => i.keyword === 'COPY' && i.args.split(/\s+/)[0] === 'requirements.lock');
  return copy?.args.split(/\s+/)[1];
}

/** Everything a `pip install` may be given: no package names, one lock, never resolving dependencies. */
function pipInstallFaults(command: string, line: number, lockPath: string | undefined): string[] {
  const faults: string[] = [];
  for (const segment of command.split(/&&|\|\||;/)) {
    const tokens = segment.trim().split(/\s+/);
    const install = tokens.findIndex((token, i) => token === 'install' && tokens[i - 1] === 'pip');
    if (install < 0) continue;
    const options = tokens.slice(install + 1);
    if (!options.includes('--no-deps')) faults.push(`pip install on line ${line} resolves dependencies (no --no-deps)`);
    const requirementFiles: string[] = [];
    for (let i = 0; i < options.length; i += 1) {
      const option = options[i] ?? '';
      if (['-r', '--requirement', '-c', '--constraint'].includes(option)) requirementFiles.push(options[(i += 1)] ?? '');
      else if (option === '--index-url') i += 1;
      else if (!['--no-deps', '--only-binary=:all:'].includes(option) && !option.startsWith('--index-url=')) {
        faults.push(`pip install on line ${line} takes "${option}", which is not the lock`);
      }
    }
    if (requirementFiles.length === 0) faults.push(`pip install on line ${line} installs without the lock`);
    for (const file of requirementFiles) {
      if (file !== lockPath) faults.push(`pip install on line ${line} reads ${file}, not the copied requirements.lock`);
    }
  }
  return faults;
}

function runFaults(instruction: Instruction, isFinal: boolean, lockPath: string | undefined): string[] {
  const command = runCommand(instruction.args);
  const faults = pipInstallFaults(command, instruction.line, lockPath);
  const checksOut = /\bcheckout\b[^&;|]*\b[0-9a-f]{40}\b/.test(command);
  for (const segment of command.split(/&&|\|\||;/).filter((s) => /\bgit\b[^|]*\b(clone|fetch)\b/.test(s))) {
    const pinned = (/\b[0-9a-f]{40}\b/.test(segment) || checksOut) && /rev-parse HEAD/.test(command);
    if (!pinned) faults.push(`git on line ${instruction.line} fetches without checking a 40-hex commit`);
  }
  if (/\b(curl|wget)\b/.test(command)) faults.push(`RUN on line ${instruction.line} downloads with curl/wget, unpinned`);
  if (isFinal && /\bapt-get\b.*\binstall\b/.test(command)) faults.push(`apt-get install on line ${instruction.line} puts unpinned packages into the runtime image`);
  return faults;
}

/** Every way the image definition breaks "pinned end to end, nothing fetched at start, never root". */
function imageFaults(dockerfile: string): string[] {
  const stages = stagesOf(dockerfile);
  const runtime = finalStage(stages);
  const lockPath = lockPathIn(runtime);
  const faults: string[] = [];
  const syntax = /^#\s*syntax\s*=\s*(\S+)/m.exec(dockerfile)?.[1];
  if (syntax && !/@sha256:[0-9a-f]{64}$/.test(syntax)) faults.push(`# syntax=${syntax} pulls a frontend image not pinned by digest`);
  const stageNames = new Set(stages.map((stage) => stage.name).filter(Boolean));
  for (const stage of stages) {
    if (!stageNames.has(stage.image) && !/@sha256:[0-9a-f]{64}$/.test(stage.image)) faults.push(`FROM ${stage.image} is not pinned by digest`);
    if (/:latest(@|$)/.test(stage.image)) faults.push(`FROM ${stage.image} uses :latest`);
    for (const instruction of stage.instructions) {
      if (instruction.keyword === 'RUN') faults.push(...runFaults(instruction, stage === runtime, lockPath));
      if (instruction.keyword === 'ADD' && /https?:\/\//.test(instruction.args) && !/--checksum=/.test(instruction.args)) {
        faults.push(`ADD on line ${instruction.line} downloads without --checksum`);
      }
    }
  }
  const user = last(runtime, 'USER')?.args.split(':')[0];
  if (user === undefined || user === 'root' || user === '0') faults.push(`the runtime stage runs as root (${user === undefined ? 'no USER' : `USER ${user}`})`);
  const entrypoint = last(runtime, 'ENTRYPOINT');
  if (!entrypoint) faults.push('the runtime stage has no ENTRYPOINT');
  for (const start of [entrypoint, last(runtime, 'CMD')]) {
    if (!start) continue;
    const argv = execForm(start.args);
    if (!argv) faults.push(`${start.keyword} on line ${start.line} is shell form`);
    else if (/(^|\/)(ba|da)?sh$/.test(argv[0] ?? '')) faults.push(`${start.keyword} on line ${start.line} starts through a shell script`);
  }
  return faults;
}

const normalize = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');

/** name -> version specifiers, from a requirements file (comments and blank lines ignored). */
function parseRequirements(text: string): Map<string, string[]> {
  const requirements = new Map<string, string[]>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const [, name = '', specifiers = ''] = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*([^;]*)$/.exec(line) ?? [];
    if (!name) throw new Error(`unsupported requirement line "${raw}"`);
    requirements.set(normalize(name), specifiers.split(',').map((s) => s.trim()).filter(Boolean));
  }
  return requirements;
}

const release = (version: string): number[] => version.split('.').map(Number);

function compare(a: string, b: string): number {
  const [x, y] = [release(a), release(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i += 1) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** PEP 440 for plain release versions, which is all this lock holds. */
function satisfies(version: string, specifier: string): boolean {
  const [, operator, wanted = ''] = /^(~=|==|!=|>=|<=|>|<)\s*(\d+(?:\.\d+)*)$/.exec(specifier) ?? [];
  switch (operator) {
    case '==': return compare(version, wanted) === 0;
    case '!=': return compare(version, wanted) !== 0;
    case '>=': return compare(version, wanted) >= 0;
    case '<=': return compare(version, wanted) <= 0;
    case '>': return compare(version, wanted) > 0;
    case '<': return compare(version, wanted) < 0;
    case '~=': {
      const prefix = release(wanted).slice(0, -1);
      return compare(version, wanted) >= 0 && prefix.every((part, i) => release(version)[i] === part);
    }
    default: throw new Error(`unsupported version specifier "${specifier}"`);
  }
}

/** Every way the lock fails to pin exactly what the upstream requirements ask for. */
function lockFaults(lock: string, upstream: string): string[] {
  const faults: string[] = [];
  const pins = new Map<string, string>();
  for (const raw of lock.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const [, name, version] = /^([A-Za-z0-9][A-Za-z0-9._-]*)==(\d+(?:\.\d+)*)$/.exec(line) ?? [];
    if (!name || !version) faults.push(`lock line "${line}" is not name==version`);
    else if (pins.has(normalize(name))) faults.push(`${name} is pinned twice`);
    else pins.set(normalize(name), version);
  }
  for (const name of pins.keys()) {
    if (BASE_IMAGE_PACKAGES.includes(name) || /^(nvidia-|triton$)/.test(name)) faults.push(`${name} belongs to the base image and must not be reinstalled`);
  }
  for (const [name, specifiers] of parseRequirements(upstream)) {
    if (BASE_IMAGE_PACKAGES.includes(name)) continue;
    const version = pins.get(name);
    if (version === undefined) faults.push(`${name} (required by ComfyUI ${COMFYUI_RELEASE.tag}) is missing from the lock`);
    else for (const specifier of specifiers.filter((s) => !satisfies(version, s))) faults.push(`${name}==${version} does not satisfy ${specifier}`);
  }
  return faults;
}

/** shellcheck (the real one, installed here) on every RUN as the /bin/sh -c script Docker hands it. */
function shellcheckRuns(dockerfile: string): { status: number | null; stdout: string } {
  const runs = parseDockerfile(dockerfile).filter((i) => i.keyword === 'RUN').map((i) => runCommand(i.args));
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'comfyui-runs-')), 'runs.sh');
  fs.writeFileSync(file, `#!/bin/sh\n${runs.join('\n')}\n`);
  const run = spawnSync('shellcheck', ['--shell=sh', file], { encoding: 'utf8' });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout };
}

const gitBlobId = (content: string): string => {
  const bytes = Buffer.from(content, 'utf8');
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
};

describe('the ComfyUI image definition (assets/comfyui/Dockerfile)', () => {
  test('is pinned end to end, fetches nothing at start and never runs as root', () => {
    expect(imageFaults(DOCKERFILE)).toEqual([]);
  });

  test('every RUN passes shellcheck', () => {
    expect(shellcheckRuns(DOCKERFILE)).toEqual({ status: 0, stdout: '' });
  });

  test('runs the contract of lib/comfyui-image.ts', () => {
    const stages = stagesOf(DOCKERFILE);
    const runtime = finalStage(stages);
    expect(runtime.image).toBe(COMFYUI_BASE_IMAGE);
    expect(execForm(last(runtime, 'ENTRYPOINT')?.args ?? '')).toEqual(COMFYUI_ENTRYPOINT);
    expect(last(runtime, 'CMD')).toBeUndefined();
    expect(last(runtime, 'USER')?.args).toBe(`${COMFYUI_CONTAINER_USER.uid}:${COMFYUI_CONTAINER_USER.gid}`);
    expect(last(runtime, 'EXPOSE')?.args).toBe(String(COMFYUI_CONTAINER_PORT));
    const setup = runtime.instructions.find((i) => i.keyword === 'RUN' && i.args.includes('useradd'))?.args ?? '';
    expect(setup).toContain(`--uid ${COMFYUI_CONTAINER_USER.uid} --gid ${COMFYUI_CONTAINER_USER.gid}`);
    for (const dir of [COMFYUI_PATHS.models, COMFYUI_PATHS.customNodes, COMFYUI_PATHS.output, COMFYUI_PATHS.input, COMFYUI_PATHS.workflows, COMFYUI_PATHS.temp]) {
      expect(setup).toContain(dir);
    }
    expect(last(runtime, 'HEALTHCHECK')?.args).toContain(`:${COMFYUI_CONTAINER_PORT}${COMFYUI_HEALTH_PATH}`);
  });

  test('states the same contract in its header comment', () => {
    const header = DOCKERFILE.split('\nFROM ')[0] ?? '';
    const values = [COMFYUI_HEALTH_PATH, String(COMFYUI_CONTAINER_PORT), `uid ${COMFYUI_CONTAINER_USER.uid}`, COMFYUI_RELEASE.tag, COMFYUI_RELEASE.commit];
    for (const value of [...values, ...Object.values(COMFYUI_PATHS)]) expect(header).toContain(value);
  });

  test('fetches ComfyUI at the pinned tag and commit at build time and checks both', () => {
    const source = stagesOf(DOCKERFILE).find((stage) => stage.instructions.some((i) => /\bgit\b.*\bfetch\b/.test(i.args)));
    expect(source?.args.get('COMFYUI_REPOSITORY')).toBe(COMFYUI_RELEASE.repository);
    expect(source?.args.get('COMFYUI_TAG')).toBe(COMFYUI_RELEASE.tag);
    expect(source?.args.get('COMFYUI_COMMIT')).toBe(COMFYUI_RELEASE.commit);
    const fetch = source?.instructions.find((i) => /\bgit\b.*\bfetch\b/.test(i.args))?.args ?? '';
    expect(fetch).toContain(`fetch -q --depth 1 "${COMFYUI_RELEASE.repository}" "${COMFYUI_RELEASE.commit}"`);
    expect(fetch).toContain(`test "$(git -C ComfyUI rev-parse HEAD)" = "${COMFYUI_RELEASE.commit}"`);
    expect(fetch).toContain(`"refs/tags/${COMFYUI_RELEASE.tag}^{}"`);
    // The lock is checked against the bundled copy; the build stops if the fetched file differs.
    expect(source?.instructions.map((i) => i.args)).toEqual(
      expect.arrayContaining([`${UPSTREAM_REQUIREMENTS_FILE} /src/expected-requirements.txt`, 'cmp /src/expected-requirements.txt ComfyUI/requirements.txt']),
    );
  });
});

describe('the Python lock (assets/comfyui/requirements.lock)', () => {
  test('the bundled requirements.txt is byte for byte the one at the pinned commit', () => {
    expect(gitBlobId(UPSTREAM_REQUIREMENTS)).toBe(COMFYUI_RELEASE.requirementsBlob);
  });

  test('pins every ComfyUI requirement with == to a version that satisfies it, and never torch', () => {
    expect(lockFaults(LOCK, UPSTREAM_REQUIREMENTS)).toEqual([]);
    expect(parseRequirements(UPSTREAM_REQUIREMENTS).size).toBeGreaterThan(20);
  });

  test('installs no ComfyUI-Manager (it downloads node lists and nodes at run time)', () => {
    const installed = [...parseRequirements(LOCK).keys(), ...parseDockerfile(DOCKERFILE).map((i) => i.args)];
    expect(installed.filter((text) => /comfyui[-_]manager/i.test(text))).toEqual([]);
  });
});

describe('the checks catch the faults they exist for', () => {
  const withFrom = (from: string): string => DOCKERFILE.replace(/^FROM \S+/gm, `FROM ${from}`);

  test.each([
    ['the old yanwk tag', withFrom('yanwk/comfyui-boot:cu124-slim-20241021'), /yanwk\/comfyui-boot:cu124-slim-20241021 is not pinned by digest/],
    ['a :latest base', withFrom('pytorch/pytorch:latest'), /uses :latest/],
    ['a floating syntax frontend', `# syntax=docker/dockerfile:1\n${DOCKERFILE}`, /# syntax=docker\/dockerfile:1 pulls a frontend image not pinned by digest/],
    ['a clone of master', DOCKERFILE.replace(/git -C ComfyUI fetch[^\n]*/, 'git clone https://github.com/Comfy-Org/ComfyUI.git \\'), /fetches without checking a 40-hex commit/],
    ['a fetch without the commit check', DOCKERFILE.replace(/ && test "\$\(git -C ComfyUI rev-parse HEAD\)"[^\n]*\n/, '\n'), /fetches without checking/],
    ['pip without the lock', DOCKERFILE.replace('-r /tmp/requirements.lock', '-r /opt/comfyui/requirements.txt'), /reads \/opt\/comfyui\/requirements.txt, not the copied requirements.lock/],
    ['pip resolving dependencies', DOCKERFILE.replace('install --no-deps', 'install'), /resolves dependencies/],
    ['an unpinned package', DOCKERFILE.replace('-r /tmp/requirements.lock', '-r /tmp/requirements.lock comfyui-frontend-package'), /takes "comfyui-frontend-package"/],
    ['a download at build', DOCKERFILE.replace('RUN cmp ', 'RUN curl -fsSL https://example.com/x -o /tmp/x && cmp '), /curl\/wget/],
    ['root', DOCKERFILE.replace('USER 1000:1000', 'USER root'), /runs as root/],
    ['no USER', DOCKERFILE.replace('USER 1000:1000\n', ''), /runs as root \(no USER\)/],
    ['a shell-form entrypoint', DOCKERFILE.replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT python /opt/comfyui/main.py --listen 0.0.0.0'), /ENTRYPOINT on line \d+ is shell form/],
  ])('%s', (_fault, dockerfile, expected) => {
    expect(imageFaults(dockerfile)).toEqual(expect.arrayContaining([expect.stringMatching(expected)]));
  });

  test('shellcheck fails a RUN with an unquoted expansion', () => {
    const unquoted = DOCKERFILE.replace('test "${tagged}" = "${COMFYUI_COMMIT}"', 'test $tagged = "${COMFYUI_COMMIT}"');
    expect(shellcheckRuns(unquoted).stdout).toContain('SC2086');
  });

  test('a Dockerfile shaped like yanwk/comfyui-boot:cu124-slim fails on every count', () => {
    // Stand-in for YanWenKun/ComfyUI-Docker cu124-slim/Dockerfile (commit 06d29f85): a :latest base,
    // pip from ComfyUI's master requirements, root, and a start script that clones ComfyUI on first run.
    const yanwk = [
      'FROM docker.io/opensuse/tumbleweed:latest',
      'RUN pip install -r https://github.com/comfyanonymous/ComfyUI/raw/refs/heads/master/requirements.txt',
      'USER root',
      'CMD ["bash","/runner-scripts/entrypoint.sh"]',
    ].join('\n');
    expect(imageFaults(yanwk)).toEqual([
      'FROM docker.io/opensuse/tumbleweed:latest is not pinned by digest',
      'FROM docker.io/opensuse/tumbleweed:latest uses :latest',
      'pip install on line 2 resolves dependencies (no --no-deps)',
      'pip install on line 2 reads https://github.com/comfyanonymous/ComfyUI/raw/refs/heads/master/requirements.txt, not the copied requirements.lock',
      'the runtime stage runs as root (USER root)',
      'the runtime stage has no ENTRYPOINT',
      'CMD on line 4 starts through a shell script',
    ]);
  });

  test.each([
    ['a missing requirement', LOCK.replace(/^av==.*\n/m, ''), 'av (required by ComfyUI v0.3.64) is missing from the lock'],
    ['a range instead of a pin', LOCK.replace('scipy==1.15.1', 'scipy>=1.15.1'), 'lock line "scipy>=1.15.1" is not name==version'],
    ['a version below the requirement', LOCK.replace('av==14.2.0', 'av==13.1.0'), 'av==13.1.0 does not satisfy >=14.2.0'],
    ['another frontend than the pinned one', LOCK.replace('comfyui-frontend-package==1.27.10', 'comfyui-frontend-package==1.28.0'), 'comfyui-frontend-package==1.28.0 does not satisfy ==1.27.10'],
    ['a major version past ~=', LOCK.replace('pydantic==2.11.3', 'pydantic==3.0.0'), 'pydantic==3.0.0 does not satisfy ~=2.0'],
    ['torch reinstalled', `${LOCK}torch==2.5.1\n`, 'torch belongs to the base image and must not be reinstalled'],
  ])('the lock check catches %s', (_fault, lock, expected) => {
    expect(lockFaults(lock, UPSTREAM_REQUIREMENTS)).toContain(expected);
  });

  test('an edited copy of the upstream requirements no longer matches the pinned commit', () => {
    expect(gitBlobId(UPSTREAM_REQUIREMENTS.replace('av>=14.2.0', 'av'))).not.toBe(COMFYUI_RELEASE.requirementsBlob);
  });
});
