import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed, expiring links to outputs the gateway keeps: `/outputs/<promptId>/<file>?exp=&sig=`,
 * sig = HMAC-SHA256(OUTPUT_LINK_SECRET, "<promptId>/<file>\n<exp>") in hex. They need no bearer
 * token (nginx lets /outputs/ through), so a client can hand them on until they expire.
 */

function mac(secret: string, promptId: string, file: string, exp: number): Buffer {
  return createHmac('sha256', secret).update(`${promptId}/${file}\n${exp}`).digest();
}

export function signedOutputPath(secret: string, promptId: string, file: string, exp: number): string {
  const sig = mac(secret, promptId, file, exp).toString('hex');
  return `/outputs/${encodeURIComponent(promptId)}/${encodeURIComponent(file)}?exp=${exp}&sig=${sig}`;
}

export type LinkCheck = 'ok' | 'expired' | 'bad-signature';

export function checkOutputLink(secret: string, promptId: string, file: string, exp: string | null, sig: string | null, nowSeconds: number): LinkCheck {
  if (!exp || !/^\d{1,12}$/.test(exp) || !sig || !/^[0-9a-f]{64}$/.test(sig)) return 'bad-signature';
  const expected = mac(secret, promptId, file, Number(exp));
  if (!timingSafeEqual(expected, Buffer.from(sig, 'hex'))) return 'bad-signature';
  return Number(exp) < nowSeconds ? 'expired' : 'ok';
}
