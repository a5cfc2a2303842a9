/**
 * comfyui-image.sh on every wake: the image cache in S3 (moto), the real AWS CLI v1 and the real
 * zstd, with a Docker stand-in that keeps the image store in a file. The stand-in's `save` and
 * `load` use Docker's image archive format (moby image/tarexport: a tar holding manifest.json with
 * each image's RepoTags and its layer tars); `load` reads the tags from that manifest like Docker.
 */
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMFYUI_IMAGE_DIR } from '../../lib/comfyui-image';
import { motoEnv, useMoto } from '../support/moto';
import { BUCKET, envFile, IMAGE_HASH, run, Sandbox, SCRIPTS } from './harness';

const SCRIPT = path.join(SCRIPTS, 'comfyui-image.sh');
const IMAGE = `aiassets/comfyui:${IMAGE_HASH.slice(0, 16)}`;
const CACHE_KEY = `cache/comfyui/${IMAGE_HASH}.tar.zst`;
const CONTEXT_KEY = `context/${IMAGE_HASH}.zip`;

const moto = useMoto();
let s3: S3Client;
let sb: Sandbox;

const DOCKER = String.raw`#!/usr/bin/env python3
import io, json, os, sys, tarfile
state = os.environ["FAKE_DOCKER"]
images_file = os.path.join(state, "images")
calls = os.path.join(state, "calls")
images = open(images_file).read().split() if os.path.exists(images_file) else []
open(calls, "a").write(" ".join(sys.argv[1:]) + "\n")
def save_images(): open(images_file, "w").write("\n".join(images) + "\n")
cmd = sys.argv[1:]
if cmd[:2] == ["image", "inspect"]:
    sys.exit(0 if cmd[2] in images else 1)
if cmd[0] == "load":
    try:
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
            manifest = None
            for member in tar:
                if member.name == "manifest.json":
                    manifest = json.load(tar.extractfile(member))
    except Exception as e:
        print("Error processing tar file(unexpected EOF): " + str(e), file=sys.stderr); sys.exit(1)
    if manifest is None:
        print("Error: open manifest.json: no such file or directory", file=sys.stderr); sys.exit(1)
    for entry in manifest:
        for tag in entry.get("RepoTags") or []:
            images.append(tag); print("Loaded image: " + tag)
    save_images(); sys.exit(0)
if cmd[0] == "build":
    if os.environ.get("FAKE_BUILD_FAILS"):
        print("ERROR: failed to solve: process did not complete successfully", file=sys.stderr); sys.exit(1)
    tag = cmd[cmd.index("-t") + 1]
    if not os.path.exists(os.path.join(cmd[-1], "Dockerfile")):
        print("ERROR: failed to read dockerfile", file=sys.stderr); sys.exit(1)
    images.append(tag); save_images(); sys.exit(0)
if cmd[0] == "save":
    tag = cmd[1]
    if tag not in images: print("Error: No such image: " + tag, file=sys.stderr); sys.exit(1)
    out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data); out.addfile(info, io.BytesIO(data))
    add("blobs/sha256/layer", os.urandom(256 * 1024))
    add("manifest.json", json.dumps([{"Config": "blobs/sha256/config", "RepoTags": [tag], "Layers": ["blobs/sha256/layer"]}]).encode())
    out.close(); sys.exit(0)
print("docker stand-in: unexpected " + " ".join(cmd), file=sys.stderr); sys.exit(64)
`;

beforeEach(async () => {
  s3 = new S3Client({ endpoint: moto().endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  // The build context as CDK ships it: the zipped assets/comfyui folder.
  const zip = path.join(fs.mkdtempSync('/tmp/ctx-'), 'context.zip');
  const zipped = spawnSync('python3', ['-m', 'zipfile', '-c', zip, ...fs.readdirSync(COMFYUI_IMAGE_DIR)], { cwd: COMFYUI_IMAGE_DIR, encoding: 'utf8' });
  expect(zipped.status).toBe(0);
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: CONTEXT_KEY, Body: fs.readFileSync(zip) }));
  fs.rmSync(path.dirname(zip), { recursive: true });
  sb = new Sandbox();
  fs.writeFileSync(path.join(sb.bin, 'docker'), DOCKER, { mode: 0o755 });
  freshInstance();
});
afterEach(() => {
  s3.destroy();
  sb.cleanup();
});

/** A new instance: an empty Docker image store and data dir. */
function freshInstance(): void {
  fs.rmSync(sb.path('docker'), { recursive: true, force: true });
  fs.rmSync(sb.path('data'), { recursive: true, force: true });
  fs.mkdirSync(sb.path('docker'));
  fs.mkdirSync(sb.path('data'));
}

const dockerCalls = () => (fs.existsSync(sb.path('docker/calls')) ? fs.readFileSync(sb.path('docker/calls'), 'utf8').trim().split('\n') : []);
const images = () => (fs.existsSync(sb.path('docker/images')) ? fs.readFileSync(sb.path('docker/images'), 'utf8').split(/\s+/).filter(Boolean) : []);

function wake(extra: Record<string, string> = {}) {
  const env = sb.env({
    ...motoEnv(moto().endpoint),
    COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(8188)),
    DATA_DIR: sb.path('data'),
    FAKE_DOCKER: sb.path('docker'),
    RETRY_SLEEP_SECONDS: '0',
    ...extra,
  });
  return run(SCRIPT, env, 240_000);
}

async function cacheObject(): Promise<Buffer | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: CACHE_KEY }));
    return Buffer.from(await out.Body!.transformToByteArray());
  } catch {
    return undefined;
  }
}

function zstdValid(data: Buffer): boolean {
  return spawnSync('zstd', ['-t', '-q'], { input: data }).status === 0;
}

jest.setTimeout(300_000);

test("a release's first wake builds from the shipped context, then caches a complete, checked archive", async () => {
  const result = await wake();
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(dockerCalls().filter((c) => c.startsWith('build'))).toEqual([expect.stringMatching(new RegExp(`^build --pull -t ${IMAGE} `))]);
  expect(images()).toEqual([IMAGE]);
  expect(result.stdout).toContain('no cache object at');
  const cached = await cacheObject();
  expect(cached && zstdValid(cached)).toBe(true);
  expect(fs.existsSync(sb.path('data/image-build'))).toBe(false);
});

test('every later wake loads the image from the cache: no build, nothing from a registry', async () => {
  await wake();
  freshInstance();
  const result = await wake();
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('loaded aiassets/comfyui');
  expect(dockerCalls().map((c) => c.split(' ')[0])).toEqual(['image', 'load', 'image']);
  expect(images()).toEqual([IMAGE]);
});

test('a truncated cache object fails the checksum, so the wake rebuilds and replaces it', async () => {
  await wake();
  const good = (await cacheObject())!;
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: CACHE_KEY, Body: good.subarray(0, Math.floor(good.length / 2)) }));
  freshInstance();
  const result = await wake();
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('is damaged; rebuilding it');
  expect(dockerCalls().some((c) => c.startsWith('build'))).toBe(true);
  expect(zstdValid((await cacheObject())!)).toBe(true);
});

test('an image already present (a ComfyUI restart) is left alone', async () => {
  await wake();
  fs.rmSync(sb.path('docker/calls'));
  const result = await wake();
  expect(result.code).toBe(0);
  expect(dockerCalls()).toEqual([`image inspect ${IMAGE}`]);
});

test('a failed build fails the unit and writes no cache object', async () => {
  const result = await wake({ FAKE_BUILD_FAILS: '1' });
  expect(result.code).not.toBe(0);
  expect(await cacheObject()).toBeUndefined();
});

test('refuses a hash that is not a content hash (it names an S3 key)', async () => {
  const env = sb.env({ COMFYUI_ENV_FILE: sb.write('comfyui.env', envFile(8188, { COMFYUI_IMAGE_HASH: '../models/x' })) });
  const result = await run(SCRIPT, env);
  expect(result.code).not.toBe(0);
  expect(result.stdout).toContain("COMFYUI_IMAGE_HASH must be a hex content hash, got '../models/x'");
});
