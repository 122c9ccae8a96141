/**
 * Names and witnesses for tests. Every test works only in namespaces it creates, under names that
 * carry this run's prefix, so the global teardown can prove nothing was left behind and parallel
 * runs never collide.
 */
import { execFileSync, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { netns, type Netns } from '../../lib/index';
import { registryDir } from '../../lib/registry';
import { rejectionCode } from './errors';

const execFileP = promisify(execFile);

/** Set by global-setup for the whole run; a fallback keeps single files runnable. */
export const RUN = process.env.NK_TEST_RUN ?? `x${randomBytes(2).toString('hex')}`;
/** Every namespace a test makes starts with this. */
export const NS_PREFIX = `nkt-${RUN}-`;

let counter = 0;

/** A fresh namespace name: nkt-RUN-TAG-N */
export function nsName(tag: string): string {
  return `${NS_PREFIX}${tag}-${process.pid % 1000}-${counter++}`;
}

/**
 * Namespace set files in the registry (lib/registry.ts) naming a namespace that starts with
 * `prefix`: test files run in parallel, so a test looks only at the sets of its own names.
 */
export function setsNaming(prefix: string): string[] {
  const dir = path.join(registryDir(), 'sets');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => !f.endsWith('.tmp'));
  } catch {
    return [];
  }
  return files
    .filter((f) => {
      try {
        const head = JSON.parse(readFileSync(path.join(dir, f), 'utf8').split('\n')[0]) as { names?: string[] };
        return (head.names ?? []).some((n) => n.startsWith(prefix));
      } catch {
        return false;
      }
    })
    .sort();
}

/**
 * Journal files in the registry (lib/registry.ts: one per process that made namespaces one at a
 * time) with a line naming a namespace that starts with `prefix`.
 */
export function journalsNaming(prefix: string): string[] {
  const dir = path.join(registryDir(), 'journal');
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => !f.endsWith('.tmp'));
  } catch {
    return [];
  }
  return files
    .filter((f) => {
      try {
        return readFileSync(path.join(dir, f), 'utf8')
          .split('\n')
          .some((l) => l.includes(`"name":"${prefix}`));
      } catch {
        return false;
      }
    })
    .sort();
}

/** The code of the NetnsError `p` rejects with (asserting it is an Error and a NetnsError), or undefined when it resolves. */
export const errorCode = rejectionCode;

/** A fresh interface name of at most 15 bytes: TAG + short random suffix. */
export function ifName(tag: string): string {
  const suffix = randomBytes(3).toString('hex');
  return `${tag.slice(0, 15 - suffix.length)}${suffix}`;
}

/** Creates namespaces and deletes them (whatever happened) when the test ends. */
export class Sandbox {
  private readonly made: Netns[] = [];

  /** Scratch namespaces are `temporary`: a jest worker that dies leaves them to gc. */
  async ns(tag: string, options?: Parameters<typeof netns.create>[1]): Promise<Netns<string>> {
    const ns = await netns.create(nsName(tag), { temporary: true, ...options });
    this.made.push(ns);
    return ns;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.made.splice(0).map((ns) => ns.delete({ missingOk: true })));
  }
}

// The witnesses run without the sanitizer run's preloaded libasan (scripts/test-asan.sh): they are
// not our code, and iproute2 aborts under it.
export const witnessEnv = { ...process.env };
delete witnessEnv.LD_PRELOAD;

/** `ip -j [-n NAME] ARGS` parsed: the independent witness. */
export function ipJson<T = Record<string, unknown>[]>(ns: Netns | undefined, ...args: string[]): T {
  const full = ns?.name ? ['-j', '-n', ns.name, ...args] : ['-j', ...args];
  // ip prints "Dump was interrupted and may be inconsistent." into its JSON when the kernel flags
  // a dump (NLM_F_DUMP_INTR); a witness must not be inconsistent, so ask again.
  for (let attempt = 0; ; attempt++) {
    const out = execFileSync('ip', full, { encoding: 'utf8', env: witnessEnv });
    try {
      return (out.trim() ? JSON.parse(out) : []) as T;
    } catch (e) {
      if (attempt >= 4) throw new Error(`ip ${full.join(' ')} printed no valid JSON: ${out}`);
    }
  }
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', env: witnessEnv });
}

export async function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileP(cmd, args, { encoding: 'utf8' });
}

/** Names under /run/netns that belong to this run. */
export function leftoverNamespaces(): string[] {
  try {
    return require('node:fs').readdirSync('/run/netns').filter((n: string) => n.startsWith(NS_PREFIX));
  } catch {
    return [];
  }
}
