/**
 * `npm run bench`: the namespace, connection and CNI benchmark (run.ts), then the traffic-control
 * one (tc.ts: shaping 1000 links through a topology vs `tc` per link and `tc -batch`), in one run.
 * KEY=VALUE arguments go to both (each reads the keys it knows); BENCH_TC=0 skips the second.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const args = process.argv.slice(2);
const skipTc = process.env.BENCH_TC === '0' || args.includes('BENCH_TC=0');
for (const script of ['run.js', 'tc.js']) {
  if (script === 'tc.js' && skipTc) continue;
  const r = spawnSync(process.execPath, [path.join(__dirname, script), ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
