// Runs once before all test files: fixes this run's name prefix and photographs the machine's own
// namespace (its links) so the teardown can prove the tests never touched it.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function globalSetup(): void {
  if (process.getuid?.() !== 0) throw new Error('netns-kit tests run as root (they create network namespaces)');
  process.env.NK_TEST_RUN = process.env.NK_TEST_RUN ?? randomBytes(2).toString('hex');
  const links = execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  const names = (JSON.parse(links) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
  writeFileSync(path.join(os.tmpdir(), `netns-kit-test-${process.env.NK_TEST_RUN}.json`), JSON.stringify({ links: names }));
}
