// Run by test/11-embed.test.ts under a low RLIMIT_NOFILE: watch() with no descriptor left must
// fail with a typed EMFILE (no thread spinning, no stream that never becomes ready), and work again
// once descriptors are free. Prints one JSON line with what it saw.
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { netns, NetnsError } from '../../lib/index';

function fill(): number[] {
  const fds: number[] = [];
  for (;;) {
    try {
      fds.push(openSync('/dev/null', 'r'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EMFILE') return fds;
      throw e;
    }
  }
}

function threads(): string[] {
  return readdirSync('/proc/self/task').map((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
}

function shape(e: unknown): Record<string, unknown> {
  const err = e as NetnsError;
  return { isError: e instanceof Error, isNetnsError: e instanceof NetnsError, code: err.code, errno: err.errno, syscall: err.syscall, detail: err.detail };
}

async function main(): Promise<void> {
  const ns = await netns.open(process.argv[2]);
  // The addon loads on first use (and needs descriptors to be loaded): load it before they run out.
  await ns.links.list();
  const out: Record<string, unknown> = {};

  // 1. No descriptor for epoll: the environment's watch thread cannot be set up.
  let fds = fill();
  const first = ns.watch({ links: true });
  out.first = await first.ready.then(() => 'ready', shape);
  for (const fd of fds) closeSync(fd);
  out.threadsAfterFirst = threads().filter((t) => t === 'nk-watch').length;

  // 2. Descriptors free again: watching works.
  const second = ns.watch({ links: true });
  out.second = await second.ready.then(() => 'ready', shape);
  out.threadsAfterSecond = threads().filter((t) => t === 'nk-watch').length;
  await second.close();

  // 3. The thread is there, but no descriptor for the subscription's sockets.
  fds = fill();
  const third = ns.watch({ links: true });
  out.third = await third.ready.then(() => 'ready', shape);
  for (const fd of fds) closeSync(fd);
  await third.close();
  await first.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stdout.write(`${JSON.stringify({ crashed: String((e as Error)?.stack ?? e) })}\n`);
  process.exitCode = 1;
});
