import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Redis } from 'ioredis';
import { downloadView, type OutputRef } from './comfy-client';
import type { StoredOutput } from './job-store';

/** A file name safe on disk and in a URL path segment. */
function safeName(name: string): string {
  const base = path.basename(name).replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return base === '' ? 'output' : base.slice(0, 200);
}

const viewKey = (ref: OutputRef) => `gw:view:${createHash('sha256').update(`${ref.type}\0${ref.subfolder}\0${ref.filename}`).digest('hex')}`;

/**
 * Outputs copied from the box when a job completes (the box may leave minutes later):
 * OUTPUT_DIR/<promptId>/<file>, at most OUTPUT_CACHE_MB in all, the oldest prompt's folder
 * removed first. ComfyUI's /view of a copied file is answered from here (indexed in Redis by
 * type, subfolder and file name), so clients can fetch outputs after the GPU scaled in.
 */
export class OutputStore {
  private total = 0;

  constructor(
    private readonly dir: string,
    private readonly capBytes: number,
    private readonly redis: Redis,
    private readonly retentionSeconds: number,
    private readonly log: (line: string) => void,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    for (const entry of this.folders()) this.total += entry.bytes;
  }

  /** Copies each ref from the box; returns what was stored (a ref the box cannot serve is logged and skipped). */
  async copy(base: string, promptId: string, refs: readonly OutputRef[]): Promise<StoredOutput[]> {
    const folder = path.join(this.dir, promptId);
    fs.mkdirSync(folder, { recursive: true });
    const stored: StoredOutput[] = [];
    const used = new Set<string>();
    for (const ref of refs) {
      let file = safeName(ref.filename);
      for (let i = 1; used.has(file); i++) file = `${i}-${safeName(ref.filename)}`;
      used.add(file);
      try {
        this.total += await downloadView(base, ref, path.join(folder, file));
      } catch (error) {
        this.log(`output ${ref.filename} of ${promptId} not copied: ${(error as Error).message}`);
        continue;
      }
      await this.redis.set(viewKey(ref), `${promptId}/${file}`, 'EX', this.retentionSeconds);
      stored.push({ ...ref, file });
    }
    this.enforceCap(promptId);
    return stored;
  }

  /** The kept file, or null when it was never copied or has been removed. */
  file(promptId: string, file: string): string | null {
    if (safeName(file) !== file || !/^[A-Za-z0-9._-]+$/.test(promptId)) return null;
    const full = path.join(this.dir, promptId, file);
    return fs.existsSync(full) ? full : null;
  }

  /** The kept copy of what ComfyUI's /view would serve for these query values, or null. */
  async viewFile(ref: OutputRef): Promise<string | null> {
    const where = await this.redis.get(viewKey(ref));
    if (!where) return null;
    const [promptId, file] = where.split('/');
    return this.file(promptId, file);
  }

  private folders(): Array<{ name: string; bytes: number; mtimeMs: number }> {
    return fs
      .readdirSync(this.dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => {
        const folder = path.join(this.dir, d.name);
        const bytes = fs.readdirSync(folder).reduce((sum, f) => sum + fs.statSync(path.join(folder, f)).size, 0);
        return { name: d.name, bytes, mtimeMs: fs.statSync(folder).mtimeMs };
      });
  }

  private enforceCap(keep: string): void {
    if (this.total <= this.capBytes) return;
    const oldestFirst = this.folders().sort((a, b) => a.mtimeMs - b.mtimeMs);
    this.total = oldestFirst.reduce((sum, f) => sum + f.bytes, 0);
    for (const folder of oldestFirst) {
      if (this.total <= this.capBytes) break;
      if (folder.name === keep) continue;
      fs.rmSync(path.join(this.dir, folder.name), { recursive: true, force: true });
      this.total -= folder.bytes;
      this.log(`output cache over ${Math.round(this.capBytes / 1048576)} MB: removed ${folder.name} (${folder.bytes} bytes)`);
    }
  }
}
