/**
 * Processes that live in a namespace. A namespace whose /run/netns entry is removed lives on while a
 * process is still inside it (with its veths, bridge and NAT rules), so clean-up stops those first.
 * Equivalent to: `ip netns pids NAME | xargs kill`
 */
import { promises as fs } from 'node:fs';

/** Ids of the processes whose network namespace is the one at `nsPath`. */
export async function pidsIn(nsPath: string): Promise<number[]> {
  let ino: bigint;
  try {
    ino = (await fs.stat(nsPath, { bigint: true })).ino;
  } catch {
    return [];
  }
  const want = `net:[${ino}]`;
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if ((await fs.readlink(`/proc/${entry}/ns/net`)) === want) pids.push(Number(entry));
    } catch {
      /* the process ended meanwhile, or is a kernel thread without a namespace link */
    }
  }
  return pids;
}

/** SIGKILLs every process in the namespace and waits (up to ~2 s) until they are gone. */
export async function killAllIn(nsPath: string): Promise<number> {
  const pids = await pidsIn(nsPath);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (let i = 0; i < 100 && pids.length; i++) {
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    if (alive.length === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return pids.length;
}
