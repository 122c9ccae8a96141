// Child process for the crash test: brings a topology up (then, if given, a second version of it)
// and reports progress on stdout, so the test can SIGKILL it at a chosen moment.
// argv: JSON { first: Topology, second?: Topology }
import { writeSync } from 'node:fs';
import { topology, type Topology } from '../../lib/index';

async function main(): Promise<void> {
  const { first, second } = JSON.parse(process.argv[2]) as { first: Topology; second?: Topology };
  // Synchronous writes: the parent sees each line before the child takes its next step.
  const say = (line: string) => writeSync(1, `${line}\n`);
  say('START');
  await topology.up(first, { onProgress: (p) => say(`P ${p.done} ${p.total} ${p.step}`) });
  say('FIRST-DONE');
  if (second) {
    await topology.up(second);
    say('SECOND-DONE');
  }
  // On a fast machine the kill may come after everything is done: wait for it, so a late kill
  // is one more moment tested rather than an error.
  setInterval(() => undefined, 1000);
}

main().catch((e: unknown) => {
  writeSync(1, `ERROR ${(e as Error).message}\n`);
  process.exit(1);
});
