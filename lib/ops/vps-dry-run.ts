import { guarded, withSession } from '../vps/deployer';
import { layoutOf, releaseDir, renderEnvFile, sha256Hex, sq, validateBundle, validateRelease, type Layout } from '../vps/deployer-input';
import { fileHashes, MANIFEST, parseManifest, VERIFY_RELEASE_FN } from '../vps/deployer-manifest';
import { Redactor } from '../vps/deployer-redact';
import { check, readState } from '../vps/deployer-remote';
import type { Bundle, DeployTarget, LockInfo, Secrets, SshConnection } from '../vps/deployer-types';
import type { SshSession } from '../vps/ssh-session';

/**
 * `vps deploy --dry-run`: what a deploy of this bundle and `.env` would change, against the
 * release `current` points to. Read-only: no lock, no cleanup of leftovers, no docker command;
 * files are compared by the sha256 in the release's `.manifest`, `.env` by the sha256 of its
 * content (neither side's content is read or shown).
 */

export interface DeployPlan {
  readonly release: string;
  readonly fileCount: number;
  readonly current: string | null;
  readonly previous: string | null;
  /** Paths against the current release (all files are `added` when nothing is current). */
  readonly added: string[];
  readonly changed: string[];
  readonly removed: string[];
  /** Whether the derived values differ from the current release's `.env`; null when nothing is current. */
  readonly envChanged: boolean | null;
  /** Why the current release fails its manifest check, if it does (deploy would not call it unchanged). */
  readonly currentProblem: string | null;
  /** The new release is on disk already (not current): deploy would switch to it without uploading. */
  readonly onDisk: boolean;
  readonly lock: LockInfo | null;
  readonly alreadyCurrent: boolean;
}

interface CurrentRelease {
  manifest: string;
  envSha256: string | null;
  problem: string | null;
}

/** The current release's manifest, the sha256 of its `.env` and its manifest check, in one read-only round trip. */
async function readCurrent(session: SshSession, L: Layout, release: string): Promise<CurrentRelease> {
  validateRelease(release);
  const dir = sq(releaseDir(L, release));
  const script = [
    VERIFY_RELEASE_FN,
    `if [ -f ${dir}/.env ]; then printf 'env=%s\\n' "$(sha256sum < ${dir}/.env | cut -d ' ' -f 1)"; fi`,
    `if why=$(verify_release ${dir}); then :; else printf 'problem=%s\\n' "$why"; fi`,
    `if [ -f ${dir}/${MANIFEST} ]; then sed 's/^/manifest=/' ${dir}/${MANIFEST}; fi`,
  ].join('\n');
  const { stdout } = await check(session, script, `reading release ${release}`);
  const values = (key: string) => stdout.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
  return { manifest: values('manifest').join('\n'), envSha256: values('env')[0] ?? null, problem: values('problem')[0] ?? null };
}

export async function planDeploy(connection: SshConnection, target: DeployTarget, bundle: Bundle, env: Secrets): Promise<DeployPlan> {
  const redactor = new Redactor(Object.values(env));
  return guarded(redactor, async () => {
    const L = layoutOf(target);
    validateBundle(bundle);
    const envSha256 = sha256Hex(renderEnvFile(env));
    const wanted = fileHashes(bundle);
    return withSession(connection, async (session) => {
      const state = await readState(session, L, { release: bundle.hash });
      const current = state.current ? await readCurrent(session, L, state.current) : null;
      const have = parseManifest(current?.manifest ?? '');
      const added = [...wanted.keys()].filter((f) => !have.has(f));
      const changed = [...wanted.keys()].filter((f) => have.has(f) && have.get(f) !== wanted.get(f));
      const removed = [...have.keys()].filter((f) => !wanted.has(f)).sort();
      const envChanged = current ? current.envSha256 !== envSha256 : null;
      const currentProblem = current?.problem ?? null;
      return {
        release: bundle.hash,
        fileCount: wanted.size,
        current: state.current,
        previous: state.previous,
        added,
        changed,
        removed,
        envChanged,
        currentProblem,
        onDisk: state.current !== bundle.hash && state.target.present && state.target.problem === null,
        lock: state.lock,
        alreadyCurrent: state.current === bundle.hash && !envChanged && currentProblem === null && added.length + changed.length + removed.length === 0,
      };
    });
  });
}

/** The plan as the operator reads it: paths only, and whether the derived values changed (never the values). */
export function renderDeployPlan(plan: DeployPlan, where: string): string[] {
  const lines = [`Dry run of vps deploy: release ${plan.release} (${plan.fileCount} files) to ${where}`];
  lines.push(`Current on the VPS: ${plan.current ?? 'none (nothing deployed)'}; previous: ${plan.previous ?? 'none'}`);
  if (plan.alreadyCurrent) {
    lines.push(`release ${plan.release} is already current: same files, same derived values (deploy would only check that its services are healthy).`);
  } else {
    if (plan.current === null) lines.push(`Nothing is current: deploy would upload all ${plan.fileCount} files and a new .env.`);
    else {
      lines.push(`Files against release ${plan.current}: ${plan.changed.length} changed, ${plan.added.length} added, ${plan.removed.length} removed`);
      for (const [word, files] of [['changed', plan.changed], ['added', plan.added], ['removed', plan.removed]] as const) {
        for (const file of files) lines.push(`  ${word.padEnd(8)} ${file}`);
      }
      lines.push(`Derived values (.env, compared by hash): ${plan.envChanged ? 'changed' : 'unchanged'}`);
      if (plan.currentProblem) lines.push(`The current release fails its manifest check (${plan.currentProblem}).`);
    }
    if (plan.onDisk) lines.push(`Release ${plan.release} is on disk already (an earlier release): deploy would switch to it without uploading.`);
  }
  lines.push(`Deploy lock: ${plan.lock ? `held by ${plan.lock.owner} for ${plan.lock.ageSeconds}s (a deploy would wait for it or be refused)` : 'free'}`);
  lines.push('dry run: nothing changed on the VPS (no lock taken, nothing written).');
  return lines;
}
