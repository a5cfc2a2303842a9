/**
 * Public types of the VPS deployer (lib/vps/deployer.ts). Kept apart so the CDK
 * custom resource and the ops CLI can import them without pulling in ssh2.
 */

/** How to reach the VPS. */
export interface SshConnection {
  host: string;
  port: number;
  username: string;
  /**
   * Pinned host key fingerprint, `SHA256:<base64 without padding>` exactly as
   * `ssh-keyscan -p PORT HOST | ssh-keygen -lf -` prints it. Required: without it
   * every operation refuses to connect.
   */
  hostKeySha256?: string;
  /** OpenSSH or PEM private key of the deploy user (unencrypted); or use `agent`. */
  privateKey?: string | Buffer;
  /** Path of an ssh-agent socket (the operator's own agent, for the ops CLI), used when no privateKey is given. */
  agent?: string;
  /** SSH handshake + authentication timeout; default 20 000 ms. */
  readyTimeoutMs?: number;
}

/** Where on the VPS an app/environment lives: `<baseDir>/<appName>/<envName>/`. */
export interface DeployTarget {
  appName: string;
  envName: string;
  /** Absolute directory on the VPS; default `/opt`. */
  baseDir?: string;
  /** Releases kept on disk after a deploy (at least 1); current and previous are always kept. */
  keepReleases: number;
}

/** A content-addressed release: relative path → file content, and its id. */
export interface Bundle {
  files: Record<string, string>;
  /** Release id, lowercase hex (8 to 128 characters), e.g. a sha256 of the files. */
  hash: string;
}

/** Secrets written to the release's `.env` (mode 0600). Never logged. */
export type Secrets = Record<string, string>;

export type LogFn = (line: string) => void;

export interface DeployOptions {
  /** Passed to `docker compose up --wait --wait-timeout`. */
  composeTimeoutSeconds: number;
  /**
   * Extra time over composeTimeoutSeconds for compose to (re)create containers before it
   * starts waiting; each `up` is killed on the VPS after both. Default UP_GRACE_SECONDS (120).
   */
  upGraceSeconds?: number;
  /** Bound on `docker compose pull`; default 600 s. */
  pullTimeoutSeconds?: number;
  /** Remove an existing `.deploy-lock` (only when its owner is known to be dead). */
  breakStaleLock?: boolean;
  /** Longest the lock may be held (e.g. the Lambda timeout); default: the sum of this run's time bounds. */
  leaseSeconds?: number;
  /** Wait at most this long for a lock whose lease is about to end (default 90 s; 0: fail at once). */
  lockWaitSeconds?: number;
  /** The images are already on the VPS (a finished prefetch of this release): skip the pull. */
  imagesPulled?: boolean;
  /**
   * Recorded on the VPS once the release is serving (the custom resource's physical id), so a
   * later Delete tears down only what its own resource deployed (`TeardownOptions.onlyIfOwner`).
   */
  owner?: string;
  log?: LogFn;
}

export interface RollbackOptions extends DeployOptions {
  /** Values to redact from logs and errors (the env deploys use); optional. */
  secrets?: Secrets;
}

export interface TeardownOptions {
  /** Also delete the project's named volumes (`docker compose down --volumes`): data loss. */
  removeVolumes: boolean;
  breakStaleLock?: boolean;
  /** Bound on `docker compose down`; default 300 s. */
  timeoutSeconds?: number;
  /** Longest the lock may be held; default: the down timeout plus 5 minutes. */
  leaseSeconds?: number;
  /** Tear down only when the recorded owner is this one; otherwise leave everything running. */
  onlyIfOwner?: string;
  secrets?: Secrets;
  log?: LogFn;
}

export interface StatusOptions {
  secrets?: Secrets;
  log?: LogFn;
}

export interface LogsOptions {
  service: string;
  /** Last N lines; default 100. */
  lines?: number;
  secrets?: Secrets;
  log?: LogFn;
}

/** One container as `docker compose ps --format json` reports it. */
export interface ServiceState {
  service: string;
  name: string;
  /** running, exited, restarting, ... or `missing` when a service has no container. */
  state: string;
  /** healthy, unhealthy, starting, or '' when the service has no health check. */
  health: string;
  exitCode: number;
  status: string;
}

export interface LockInfo {
  owner: string;
  ageSeconds: number;
  /** The holder's lease (see `DeployOptions.leaseSeconds`); absent for locks from older deployers. */
  leaseSeconds?: number;
}

export interface DeployResult {
  action: 'deployed' | 'unchanged';
  release: string;
  /** The release that was current before (null on a first deploy). */
  previous: string | null;
  /** Releases deleted by the keep-N pruning. */
  pruned: string[];
}

export interface RollbackResult {
  action: 'rolled-back';
  release: string;
  /** The release that was current before the rollback (now `previous`). */
  previous: string | null;
}

export interface StatusResult {
  current: string | null;
  previous: string | null;
  /** Release ids on disk, most recently activated first. */
  releases: string[];
  services: ServiceState[];
  lock: LockInfo | null;
  /** Outcome of the last gate run on the VPS (also one whose client lost its connection). */
  lastRun: LastRun | null;
}

/** What the last remote gate step recorded in `.last-run`. */
export interface LastRun {
  /** serving, restored, stopped, stayed or refused. */
  outcome: string;
  release: string;
  current: string | null;
  at: string;
  detail: string;
}

export interface LogsResult {
  release: string;
  service: string;
  lines: string[];
}

export interface TeardownResult {
  /** `not-owner`: another deployment (or none) owns what runs there, so nothing was touched. */
  action: 'torn-down' | 'not-owner';
  removedReleases: string[];
  volumesRemoved: boolean;
  /** The owner recorded on the VPS when `onlyIfOwner` was given. */
  owner?: string | null;
}

export type DeployErrorCode =
  | 'INVALID_INPUT'
  | 'HOST_KEY_NOT_PINNED'
  | 'HOST_KEY_MISMATCH'
  | 'CONNECT_FAILED'
  | 'SSH_FAILED'
  | 'TIMEOUT'
  | 'LOCKED'
  | 'UPLOAD_FAILED'
  | 'PULL_FAILED'
  | 'HEALTH_GATE_FAILED'
  | 'NO_CURRENT_RELEASE'
  | 'NO_PREVIOUS_RELEASE'
  | 'REMOTE_COMMAND_FAILED'
  /** The VPS has no space left where the deploy writes. */
  | 'DISK_FULL'
  /** The connection was lost while the gate ran on the VPS, which finishes it on its own. */
  | 'GATE_DETACHED'
  /** A release on the VPS does not match its manifest (tampered, or a symlink to elsewhere). */
  | 'RELEASE_TAMPERED';

/** What a failed health gate left behind (HEALTH_GATE_FAILED errors). */
export interface GateFailure {
  failedRelease: string;
  /** The release `current` points at now (null: no current link). */
  currentRelease: string | null;
  /** Whether the restored release passed its own `up --wait` (null: nothing restored). */
  restoredHealthy: boolean | null;
  services: ServiceState[];
  /** Last log lines per failing service (redacted). */
  logs: Record<string, string[]>;
}

export class DeployError extends Error {
  constructor(
    readonly code: DeployErrorCode,
    message: string,
    readonly details?: GateFailure | LockInfo,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}
