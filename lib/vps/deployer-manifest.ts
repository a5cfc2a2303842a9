import { createHash } from 'node:crypto';
import type { Bundle } from './deployer-types';

/**
 * Each release carries `.manifest`: one `sha256sum` line per bundle file
 * (`<hex>  ./<name>`, sorted bytewise). A release is served, rolled back to or
 * called unchanged only when it is a real directory (not a symlink), holds no
 * symlink, every listed file matches its hash and no unlisted file sits beside
 * them (compose would read an added override file). `.env` is checked by its own
 * hash (it changes with the secrets) and is not listed.
 */
export const MANIFEST = '.manifest';

/** The bundle's files by name (sorted bytewise, as in the manifest) with the sha256 of each. */
export function fileHashes(bundle: Bundle): Map<string, string> {
  return new Map(
    Object.keys(bundle.files)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map((name) => [name, createHash('sha256').update(bundle.files[name], 'utf8').digest('hex')]),
  );
}

export function manifestOf(bundle: Bundle): string {
  return [...fileHashes(bundle)].map(([name, hash]) => `${hash}  ./${name}\n`).join('');
}

/** A manifest's `<sha256>  ./<name>` lines back as name -> sha256 (other lines are ignored). */
export function parseManifest(manifest: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const line of manifest.split('\n')) {
    const match = /^([0-9a-f]{64}) {2}\.\/(.+)$/.exec(line);
    if (match) files.set(match[2], match[1]);
  }
  return files;
}

/**
 * Shell function `verify_release DIR`: exits 0 only for an intact release, else prints why.
 * Shared by the state read and the remote gate step, so both judge a release alike.
 */
export const VERIFY_RELEASE_FN = [
  'verify_release() {',
  '  if [ -L "$1" ] || [ ! -d "$1" ]; then echo "$1 is not a directory (a symlink, or missing)"; return 1; fi',
  `  if [ ! -f "$1/${MANIFEST}" ] || [ -L "$1/${MANIFEST}" ]; then echo "$1 has no ${MANIFEST}"; return 1; fi`,
  '  if [ -n "$(find "$1" -type l -print -quit)" ]; then echo "$1 holds a symlink"; return 1; fi',
  `  if ! (cd "$1" && sha256sum --quiet --strict -c ${MANIFEST} >/dev/null 2>&1); then echo "files of $1 differ from its ${MANIFEST}"; return 1; fi`,
  `  listed="$(cut -c 67- "$1/${MANIFEST}" | LC_ALL=C sort)"`,
  `  present="$(cd "$1" && find . -type f ! -path ./.env ! -path ./${MANIFEST} | LC_ALL=C sort)"`,
  '  if [ "$listed" != "$present" ]; then echo "$1 holds files its manifest does not list"; return 1; fi',
  '}',
].join('\n');
