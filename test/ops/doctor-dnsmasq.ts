import { spawn, type ChildProcess } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { freePort } from '../support/moto';

/** Where Debian's dnsmasq-base puts it (not on a non-root user's PATH, like sshd). */
const DNSMASQ = '/usr/sbin/dnsmasq';

/** A real DNS server (Debian's dnsmasq-base) on 127.0.0.1, authoritative for one test domain. */
export interface Dnsmasq {
  /** For dns.Resolver#setServers and `--dns-server`. */
  readonly server: string;
  stop(): Promise<void>;
}

/** Answers that mean the server is up (a name it does not know is NXDOMAIN: --local). */
async function answers(server: string, name: string): Promise<boolean> {
  const resolver = new dns.Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([server]);
  try {
    await resolver.resolve4(name);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOTFOUND';
  }
}

/**
 * Serves `records` (name -> IPv4/IPv6 addresses) and answers NXDOMAIN for any other name under
 * `domain`; no upstream, no /etc/hosts, nothing but loopback.
 */
export async function startDnsmasq(domain: string, records: Record<string, readonly string[]>): Promise<Dnsmasq> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const server = `127.0.0.1:${port}`;
    const args = [
      '--no-daemon',
      '--no-resolv',
      '--no-hosts',
      '--bind-interfaces',
      `--port=${port}`,
      '--listen-address=127.0.0.1',
      `--local=/${domain}/`,
      ...Object.entries(records).flatMap(([name, addresses]) => addresses.map((a) => `--address=/${name}/${a}`)),
    ];
    let log = '';
    const child: ChildProcess = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    child.on('error', (error) => (log += `${error.message} (install dnsmasq-base)\n`));
    const deadline = Date.now() + 5000;
    for (; Date.now() < deadline && child.exitCode === null; await new Promise((r) => setTimeout(r, 50))) {
      if (await answers(server, `probe.${domain}`)) {
        return {
          server,
          stop: () =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        };
      }
    }
    child.kill('SIGKILL');
    if (!/Address (already )?in use/i.test(log)) throw new Error(`dnsmasq did not answer on ${server}:\n${log}`);
  }
  throw new Error('dnsmasq found no free port in 3 attempts');
}
