/**
 * The gateway's encrypted link to ComfyUI on a GPU box: SSH port forwarding.
 *
 * ComfyUI publishes only on the box's 127.0.0.1:8188 and the security group admits only the
 * VPS /32 on 22. The gateway logs in as the box's no-shell user comfyui-link with its own
 * ed25519 key (link-key.ts; registered through the control function, authorized by the box's
 * link-access.sh for forwarding to 127.0.0.1:8188 and nothing else) and pins the box's host key
 * to the fingerprint the box tagged itself with (HOST_KEY_TAG), which the gateway reads through
 * the control function: an AWS-side channel that nothing on the network can impersonate.
 *
 * Why SSH rather than TLS or WireGuard: sshd already ships on the AMI and ssh2 is already a
 * dependency (the deployer uses it), so nothing new runs on either side; one TCP connection
 * multiplexes every HTTP request and WebSocket as channels; and there is no certificate
 * authority to run: each side makes its own key where it is used and only public halves travel,
 * over AWS (SSM parameter, instance tag). TLS would need a certificate per box, a CA or pins to
 * hand out, and a TLS proxy in front of ComfyUI; WireGuard a daemon and a UDP port on both ends,
 * with the same key distribution to build.
 *
 * Per instance: one SSH connection and one local listener on 127.0.0.1:<ephemeral>; each socket
 * accepted there becomes a `direct-tcpip` channel to 127.0.0.1:8188 on the box. The listener's
 * port stays the same while the instance is retained, so a base URL stays valid when a dropped
 * connection is reopened (on the next baseUrl()).
 */
import * as net from 'node:net';
import { Client } from 'ssh2';
import { COMFYUI_CONTAINER_PORT } from '../../lib/comfyui-image';
import { HOST_KEY_TAG, type ControlInstance } from '../../lib/gpu-control/protocol';
import { fingerprintFromSha256Hex } from '../../lib/vps/deployer-host-key';
import type { Upstream } from './upstream';

/** The box's link user (assets/user-data/link-access.sh). */
export const LINK_USER = 'comfyui-link';

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export interface SshUpstreamOptions {
  /** The gateway's OpenSSH-format ed25519 private key (link-key.ts). */
  readonly privateKey: string;
  /** Default comfyui-link. */
  readonly username?: string;
  /** The boxes' SSH port; default 22. */
  readonly sshPort?: number;
  /** ComfyUI's port on the box's loopback; default 8188 (the container port, published under the same number). */
  readonly remotePort?: number;
  /** Bound of TCP connect plus SSH handshake plus authentication; default 10 s. */
  readonly readyTimeoutMs?: number;
  /** A dead box is noticed after about interval x (countMax + 1); defaults 10 s and 2 (30 s). */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveCountMax?: number;
  readonly log?: (line: string) => void;
}

interface Target {
  readonly host: string;
  readonly fingerprint: string;
}

const sameTarget = (a: Target | null, b: Target) => a !== null && a.host === b.host && a.fingerprint === b.fingerprint;

/** What baseUrl() connects to, or why the instance cannot be reached (no address or no host key yet). */
function targetOf(instance: ControlInstance): Target {
  const id = instance.instanceId;
  if (!instance.publicIp) throw new Error(`instance ${id} has no public IP address: its SSH link cannot be opened`);
  const fingerprint = instance.hostKeySha256;
  if (!fingerprint) {
    throw new Error(`instance ${id} has not tagged its SSH host key (${HOST_KEY_TAG}) yet: not reachable until it does (link-access.sh, at boot)`);
  }
  if (!FINGERPRINT.test(fingerprint)) {
    throw new Error(`instance ${id} has ${HOST_KEY_TAG} "${fingerprint}": allowed is SHA256:<43 base64 characters> as ssh-keygen -lf prints it`);
  }
  return { host: instance.publicIp, fingerprint };
}

export class SshUpstream implements Upstream {
  private readonly links = new Map<string, Link>();
  private readonly settings: Required<SshUpstreamOptions>;

  constructor(options: SshUpstreamOptions) {
    this.settings = {
      username: LINK_USER,
      sshPort: 22,
      remotePort: COMFYUI_CONTAINER_PORT,
      readyTimeoutMs: 10_000,
      keepaliveIntervalMs: 10_000,
      keepaliveCountMax: 2,
      log: (line) => console.log(`gpu-link: ${line}`),
      ...options,
    };
  }

  async baseUrl(instance: ControlInstance): Promise<string> {
    const target = targetOf(instance);
    let link = this.links.get(instance.instanceId);
    if (!link) {
      link = new Link(instance.instanceId, this.settings);
      this.links.set(instance.instanceId, link);
    }
    return link.open(target);
  }

  retain(instanceIds: readonly string[]): void {
    const keep = new Set(instanceIds);
    for (const [id, link] of this.links) {
      if (keep.has(id)) continue;
      this.links.delete(id);
      void link.close(`instance ${id} is gone`);
    }
  }

  async close(): Promise<void> {
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((link) => link.close('gateway closing')));
  }
}

/** One instance: a local listener whose sockets are forwarded over the current SSH connection. */
class Link {
  private readonly server = net.createServer((socket) => this.forward(socket));
  private readonly listening: Promise<string>;
  private readonly sockets = new Set<net.Socket>();
  private client: Client | null = null;
  private target: Target | null = null;
  private pending: { target: Target; done: Promise<void> } | null = null;
  private closed = false;

  constructor(
    private readonly instanceId: string,
    private readonly settings: Required<SshUpstreamOptions>,
  ) {
    this.listening = new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`));
    });
  }

  /** The base URL once the SSH connection to `target` is up (reusing it, or reopening a dropped one). */
  async open(target: Target): Promise<string> {
    const url = await this.listening;
    for (;;) {
      if (this.closed) throw new Error(`the link to ${this.instanceId} was closed (the instance is no longer in the fleet)`);
      if (this.client && sameTarget(this.target, target)) return url;
      if (this.pending && sameTarget(this.pending.target, target)) {
        await this.pending.done;
        continue;
      }
      // Nothing open, or the box's address or host key changed: (re)connect.
      this.drop('its address or host key changed');
      const done = this.connect(target);
      this.pending = { target, done };
      try {
        await done;
      } finally {
        if (this.pending?.done === done) this.pending = null;
      }
    }
  }

  async close(why: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.drop(why);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private connect(target: Target): Promise<void> {
    const { username, sshPort, readyTimeoutMs, keepaliveIntervalMs, keepaliveCountMax, privateKey } = this.settings;
    const where = `${this.instanceId} at ${username}@${target.host}:${sshPort}`;
    return new Promise<void>((resolve, reject) => {
      const client = new Client();
      let received: string | undefined;
      let settled = false;
      const fail = (cause: string) => {
        if (settled) return;
        settled = true;
        client.destroy();
        if (received !== undefined && received !== target.fingerprint) {
          reject(
            new Error(
              `refusing the SSH link to ${where}: its host key is ${received}, but the box tagged ${HOST_KEY_TAG}=${target.fingerprint} ` +
                '(another machine at that address, or a stale tag); nothing was authenticated',
            ),
          );
        } else {
          reject(new Error(`could not open the SSH link to ${where}: ${cause}`));
        }
      };
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        if (this.closed) {
          client.destroy();
          reject(new Error(`the link to ${this.instanceId} was closed while it opened`));
          return;
        }
        this.adopt(client, target);
        resolve();
      });
      client.on('error', (err) => fail(err.message));
      client.once('close', () => fail('connection closed during the handshake'));
      client.connect({
        host: target.host,
        port: sshPort,
        username,
        privateKey,
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: keepaliveIntervalMs,
        keepaliveCountMax,
        // The tag is the ed25519 key's fingerprint: negotiate that key, whatever else the box has.
        algorithms: { serverHostKey: ['ssh-ed25519'] },
        // Checked during key exchange, before authentication: a wrong host never sees a signature.
        hostHash: 'sha256',
        hostVerifier: (digestHex: string): boolean => {
          received = fingerprintFromSha256Hex(digestHex);
          return received === target.fingerprint;
        },
      });
    });
  }

  private adopt(client: Client, target: Target): void {
    this.client = client;
    this.target = target;
    this.settings.log(`link to ${this.instanceId} (${target.host}) open, host key ${target.fingerprint}`);
    let reason = 'connection closed';
    client.on('error', (err) => (reason = err.message));
    const lost = () => {
      if (this.client !== client) return;
      this.settings.log(`link to ${this.instanceId} (${target.host}) lost: ${reason}; the next request reopens it`);
      this.drop(reason);
    };
    client.on('end', lost);
    client.on('close', lost);
  }

  /** Forgets the SSH connection and cuts every forwarded socket (their requests fail, not hang). */
  private drop(why: string): void {
    const client = this.client;
    this.client = null;
    this.target = null;
    for (const socket of this.sockets) socket.destroy(new Error(`link to ${this.instanceId} closed: ${why}`));
    this.sockets.clear();
    client?.destroy();
  }

  private forward(socket: net.Socket): void {
    const client = this.client;
    socket.on('error', () => undefined); // every failure ends in 'close', handled below
    if (!client) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    client.forwardOut(socket.remoteAddress ?? '127.0.0.1', socket.remotePort ?? 0, '127.0.0.1', this.settings.remotePort, (err, channel) => {
      if (err) {
        this.settings.log(`forward to 127.0.0.1:${this.settings.remotePort} on ${this.instanceId} failed: ${err.message}`);
        socket.destroy();
        return;
      }
      if (socket.destroyed) {
        channel.close();
        return;
      }
      channel.on('error', () => socket.destroy());
      // An orderly end flows through the pipes; a channel torn down without one cuts the socket.
      channel.once('close', () => {
        if (!socket.writableEnded) socket.destroy();
      });
      socket.once('close', () => channel.close());
      socket.pipe(channel).pipe(socket);
    });
  }
}
