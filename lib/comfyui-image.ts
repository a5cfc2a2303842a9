import * as path from 'node:path';

/**
 * The ComfyUI runtime image's contract. assets/comfyui/Dockerfile states the same values in its header
 * and its ENTRYPOINT; test/comfyui-image.test.ts keeps the two equal.
 */

/** Build context of the image (Dockerfile, requirements.lock, the upstream requirements copy). */
export const COMFYUI_IMAGE_DIR = path.join(__dirname, '..', 'assets', 'comfyui');

/** pytorch/pytorch 2.5.1-cuda12.4-cudnn9-runtime, linux/amd64 manifest digest; Python 3.11. */
export const COMFYUI_BASE_IMAGE =
  'pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime@sha256:c8268a92a69bd500f8be0e665b2630ee006dadaf7bfbc24249141b15ff622755';

/** The ComfyUI release, fetched at build time only. The tag's commit is "ComfyUI version 0.3.64". */
export const COMFYUI_RELEASE = {
  repository: 'https://github.com/Comfy-Org/ComfyUI.git',
  tag: 'v0.3.64',
  commit: '637221995f7424a561bd825de3e61ea117dfe1e3',
  /** Git blob id of requirements.txt at that commit: the bundled copy must hash to it. */
  requirementsBlob: 'd4594df393999b0231b43bd7553957fb19fc7dc1',
} as const;

/** Non-root user the container runs as. */
export const COMFYUI_CONTAINER_USER = { name: 'comfyui', uid: 1000, gid: 1000 } as const;

/** Address and port ComfyUI listens on inside the container. */
export const COMFYUI_LISTEN_ADDRESS = '0.0.0.0';
export const COMFYUI_CONTAINER_PORT = 8188;

/** ComfyUI is ready when this answers 200 (route "/system_stats" in server.py at the pinned commit). */
export const COMFYUI_HEALTH_PATH = '/system_stats';

const DATA_ROOT = '/var/lib/comfyui';

/**
 * Where ComfyUI reads and writes inside the container; the box binds host directories onto them, writable
 * by uid/gid 1000 (models may be read-only). `user` and `customNodes` must exist when ComfyUI starts:
 * cli_args.py validates --user-directory and main.py lists custom_nodes. The image creates all of them.
 */
export const COMFYUI_PATHS = {
  base: DATA_ROOT,
  models: `${DATA_ROOT}/models`,
  customNodes: `${DATA_ROOT}/custom_nodes`,
  output: `${DATA_ROOT}/output`,
  input: `${DATA_ROOT}/input`,
  user: `${DATA_ROOT}/user`,
  workflows: `${DATA_ROOT}/user/default/workflows`,
  temp: `${DATA_ROOT}/temp`,
  database: `${DATA_ROOT}/user/comfyui.db`,
} as const;

/** The image's ENTRYPOINT (exec form): no shell, nothing downloaded before ComfyUI starts. */
export const COMFYUI_ENTRYPOINT: readonly string[] = [
  '/opt/conda/bin/python',
  '/opt/comfyui/main.py',
  '--listen',
  COMFYUI_LISTEN_ADDRESS,
  '--port',
  String(COMFYUI_CONTAINER_PORT),
  '--base-directory',
  COMFYUI_PATHS.base,
  '--output-directory',
  COMFYUI_PATHS.output,
  '--input-directory',
  COMFYUI_PATHS.input,
  '--user-directory',
  COMFYUI_PATHS.user,
  '--database-url',
  `sqlite:///${COMFYUI_PATHS.database}`,
];

/** Installed by the base image; the lock must never reinstall them. */
export const BASE_IMAGE_PACKAGES: readonly string[] = ['torch', 'torchvision', 'torchaudio'];
