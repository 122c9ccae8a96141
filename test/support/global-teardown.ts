// Runs once after all test files: the run fails if anything it made is still there — entries in
// /run/netns, bind mounts, or links in the machine's own namespace. Then it drops the registry's
// journals of the test processes (jest ends its workers without their exit handlers, which would
// remove an empty journal themselves).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { gc } from '../../lib/index';
import { dropEmptyJournalsOf } from '../../lib/registry';

export default async function globalTeardown(): Promise<void> {
  const run = process.env.NK_TEST_RUN!;
  const prefix = `nkt-${run}-`;
  const file = path.join(os.tmpdir(), `netns-kit-test-${run}.json`);
  const before = (JSON.parse(readFileSync(file, 'utf8')) as { links: string[] }).links;
  rmSync(file, { force: true });
  const problems: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    /* no /run/netns at all: nothing left */
  }
  if (entries.length) problems.push(`namespaces left in /run/netns: ${entries.join(' ')}`);
  const mounts = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], { encoding: 'utf8' })
    .split('\n')
    .filter((t) => t.startsWith(`/run/netns/${prefix}`));
  if (mounts.length) problems.push(`bind mounts left: ${mounts.join(' ')}`);
  const now = (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname);
  const extra = now.filter((n) => !before.includes(n));
  if (extra.length) problems.push(`links appeared in the machine's own namespace: ${extra.join(' ')}`);
  // Journals of gone processes with nothing left in them go; anything of this run still recorded
  // would be collected (and it is reported above already).
  await gc({ prefix });
  // Run in band (the Podman run), the tests wrote from this very process: its journals go too.
  dropEmptyJournalsOf(process.pid);
  if (problems.length) throw new Error(`tests left debris:\n  ${problems.join('\n  ')}`);
}
