import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { checkOutputLink, signedOutputPath } from '../../assets/gateway/output-links';
import { OutputStore } from '../../assets/gateway/output-store';
import { ComfyUiStandIn } from './support/comfyui-stand-in';
import { useRedis } from './support/redis-server';

/** The output cache: copies from the box's /view, the size cap (oldest prompt first), the /view index, the signed links. */
const redis = useRedis();
let dir: string;
let client: Redis;
let box: ComfyUiStandIn;

beforeEach(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-output-store-'));
  client = new Redis(redis().url);
  await client.flushdb();
  box = new ComfyUiStandIn();
  await box.start();
});
afterEach(async () => {
  client.disconnect();
  await box.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('over OUTPUT_CACHE_MB the oldest prompt folder goes first; /view of a removed file is no longer answered from the cache', async () => {
  const logs: string[] = [];
  const store = new OutputStore(dir, 5000, client, 3600, (line) => logs.push(line));
  for (const n of [1, 2, 3]) box.putFile('output', '', `img-${n}.png`, Buffer.alloc(2000, n));
  const ref = (n: number) => ({ filename: `img-${n}.png`, subfolder: '', type: 'output' });
  expect(await store.copy(box.url, 'p1', [ref(1)])).toEqual([{ ...ref(1), file: 'img-1.png' }]);
  await store.copy(box.url, 'p2', [ref(2)]);
  expect(await store.viewFile(ref(1))).toBe(path.join(dir, 'p1', 'img-1.png'));
  await store.copy(box.url, 'p3', [ref(3)]); // 6000 > 5000: p1 goes
  expect(fs.readdirSync(dir).sort()).toEqual(['p2', 'p3']);
  expect(await store.viewFile(ref(1))).toBeNull();
  expect(fs.readFileSync((await store.viewFile(ref(3)))!)).toEqual(Buffer.alloc(2000, 3));
  expect(logs).toEqual(['output cache over 0 MB: removed p1 (2000 bytes)']);
});

test('a missing output is skipped and said; names are made safe; paths outside the cache are refused', async () => {
  const logs: string[] = [];
  const store = new OutputStore(dir, 1e9, client, 3600, (line) => logs.push(line));
  box.putFile('output', 'sub', 'a b.png', Buffer.from('x'));
  const stored = await store.copy(box.url, 'p1', [
    { filename: 'a b.png', subfolder: 'sub', type: 'output' },
    { filename: 'gone.png', subfolder: '', type: 'output' },
  ]);
  expect(stored).toEqual([{ filename: 'a b.png', subfolder: 'sub', type: 'output', file: 'a_b.png' }]);
  expect(logs).toEqual([expect.stringMatching(/^output gone.png of p1 not copied: GET \/view of gone.png on .* answered HTTP 404$/)]);
  expect(store.file('p1', 'a_b.png')).toBe(path.join(dir, 'p1', 'a_b.png'));
  expect(store.file('p1', '../p1/a_b.png')).toBeNull();
  expect(store.file('..', 'a_b.png')).toBeNull();
});

test('signed links: the signature covers prompt, file and expiry', () => {
  const secret = 's'.repeat(32);
  const link = new URL(`https://g${signedOutputPath(secret, 'p1', 'a.png', 2000)}`);
  const [exp, sig] = [link.searchParams.get('exp'), link.searchParams.get('sig')];
  expect(link.pathname).toBe('/outputs/p1/a.png');
  expect(checkOutputLink(secret, 'p1', 'a.png', exp, sig, 1999)).toBe('ok');
  expect(checkOutputLink(secret, 'p1', 'a.png', exp, sig, 2001)).toBe('expired');
  expect(checkOutputLink(secret, 'p2', 'a.png', exp, sig, 1999)).toBe('bad-signature');
  expect(checkOutputLink(secret, 'p1', 'a.png', '3000', sig, 1999)).toBe('bad-signature');
  expect(checkOutputLink('t'.repeat(32), 'p1', 'a.png', exp, sig, 1999)).toBe('bad-signature');
  expect(checkOutputLink(secret, 'p1', 'a.png', exp, 'zz', 1999)).toBe('bad-signature');
});
