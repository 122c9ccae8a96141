// After each test file: every thread of the test process except the addon's own workers
// (named nk-*) must still be in the network namespace the process started in. A libuv pool
// thread left in a test namespace would resolve names and open sockets there.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

const home = readlinkSync('/proc/self/ns/net');

export function strayThreads(): string[] {
  const stray: string[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    let ns: string;
    let comm: string;
    try {
      ns = readlinkSync(`/proc/self/task/${tid}/ns/net`);
      comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // the thread ended meanwhile
    }
    if (ns !== home && !comm.startsWith('nk-')) stray.push(`${tid} (${comm}) in ${ns}`);
  }
  return stray;
}

afterAll(() => {
  expect(strayThreads()).toEqual([]);
});
