/**
 * Leases of the built-in address allocator, one JSON file per network, safe under concurrent
 * plugin processes: every read-modify-write holds an exclusive flock(2) on a lock file beside it
 * (the kernel releases it if the holder dies, so no stale lock survives a crash), and the new
 * state is written to a temporary file, fsync'd and renamed over the old one, so a reader or a
 * crash sees either the old or the new file, never a torn one.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { acquireFileLock } from '../file-lock';
import { CODES, CniError } from './spec';

export interface Lease {
  containerID: string;
  ifname: string;
}

export interface LeaseState {
  /** address -> holder */
  leases: Record<string, Lease>;
  /** range-set index -> the address handed out last (allocation continues after it, round robin) */
  last: Record<string, string>;
}

/** How long a plugin waits for the lock before answering "try again later" (code 11). */
const LOCK_TIMEOUT_MS = 30_000;


/**
 * Runs `fn` holding an exclusive flock on `lockPath` (created if needed), waiting at most
 * LOCK_TIMEOUT_MS before failing with "try again later" (code 11).
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(lockPath), { recursive: true, mode: 0o755 });
  const lock = await fs.open(lockPath, 'a', 0o600);
  try {
    if (!(await acquireFileLock(lock.fd, LOCK_TIMEOUT_MS))) {
      throw new CniError(CODES.TRY_AGAIN_LATER, `${lockPath} is locked by another plugin`, 'try again later');
    }
    return await fn();
  } finally {
    await lock.close(); // releases the flock
  }
}

export class LeaseStore {
  readonly dir: string;
  private readonly file: string;

  constructor(dataDir: string, network: string) {
    this.dir = path.join(dataDir, network);
    this.file = path.join(this.dir, 'leases.json');
  }

  /** Runs `fn` on the current state under the lock; the state it returns (if any) is stored atomically. */
  async update<T>(fn: (state: LeaseState) => { state?: LeaseState; value: T }): Promise<T> {
    return withFileLock(path.join(this.dir, 'lock'), async () => {
      const { state, value } = fn(await this.read());
      if (state) await this.write(state);
      return value;
    });
  }

  /** The current state without locking (a rename makes every read see a whole file). */
  async read(): Promise<LeaseState> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { leases: {}, last: {} };
      throw new CniError(CODES.IO_FAILURE, `cannot read ${this.file}`, (e as Error).message);
    }
    try {
      const s = JSON.parse(text) as LeaseState;
      return { leases: s.leases ?? {}, last: s.last ?? {} };
    } catch (e) {
      throw new CniError(CODES.DECODING_FAILURE, `corrupt lease file ${this.file}`, (e as Error).message);
    }
  }

  private async write(state: LeaseState): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, this.file);
  }
}
