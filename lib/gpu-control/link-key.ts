/**
 * The gateway's SSH public key for the link to ComfyUI: only `ssh-ed25519 <base64>`, the key
 * blob checked to be what it says (RFC 8709 section 4: string "ssh-ed25519", string key of 32
 * bytes); a comment after it is dropped, so nothing but the key reaches the boxes.
 */

const KEY_TYPE = 'ssh-ed25519';
const ED25519_KEY_BYTES = 32;

export type LinkKey = { readonly ok: true; readonly key: string } | { readonly ok: false; readonly message: string };

/** Reads an SSH wire-format string (uint32 length, bytes) at `offset`; null when it runs past the end. */
function wireString(blob: Buffer, offset: number): { value: Buffer; next: number } | null {
  if (offset + 4 > blob.length) return null;
  const length = blob.readUInt32BE(offset);
  const next = offset + 4 + length;
  return next > blob.length ? null : { value: blob.subarray(offset + 4, next), next };
}

export function parseLinkKey(publicKey: string): LinkKey {
  const allowed = `allowed is an OpenSSH ed25519 public key: "${KEY_TYPE} <base64>" with an optional comment`;
  const shown = publicKey.length > 60 ? `${publicKey.slice(0, 57)}...` : publicKey;
  const match = /^ssh-ed25519 ([A-Za-z0-9+/]+={0,2})(?: [^\r\n]*)?$/.exec(publicKey.trim());
  if (!match) return { ok: false, message: `publicKey is ${JSON.stringify(shown)}: ${allowed}` };
  const blob = Buffer.from(match[1], 'base64');
  const type = wireString(blob, 0);
  const key = type && wireString(blob, type.next);
  if (!type || type.value.toString('latin1') !== KEY_TYPE || !key || key.value.length !== ED25519_KEY_BYTES || key.next !== blob.length) {
    return { ok: false, message: `publicKey is ${JSON.stringify(shown)}: its base64 part is not an ed25519 key blob; ${allowed}` };
  }
  return { ok: true, key: `${KEY_TYPE} ${match[1]}` };
}
