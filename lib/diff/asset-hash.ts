/**
 * CDK names each asset's object in the staging bucket by the SHA-256 of its content
 * (`<64 hex>.zip` / `.json`), so the hash changes whenever the asset does, while what a
 * template grants on it does not.
 */
const ASSET_HASH = /[a-f0-9]{64}/g;

/** The text with every asset hash replaced by `[HASH]`. */
export function maskAssetHashes(text: string): string {
  return text.replace(ASSET_HASH, '[HASH]');
}
