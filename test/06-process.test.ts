// Processes inside a namespace: spawn/exec without a shell; the main thread never moves.
import { readlinkSync } from 'node:fs';
import { NetnsError } from '../lib/index';
import { Sandbox } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

test('exec runs inside the namespace, arguments are not shell-interpreted', async () => {
  const ns = await sb.ns('exec');
  const mine = readlinkSync('/proc/self/ns/net');
  const r = await ns.exec('readlink', ['/proc/self/ns/net']);
  expect(r.stdout.trim()).not.toBe(mine);
  expect(r.exitCode).toBe(0);
  const echoed = await ns.exec('echo', ['$(id)', ';', 'rm -rf /', '`x`']);
  expect(echoed.stdout).toBe('$(id) ; rm -rf / `x`\n');
  const links = await ns.exec('ip', ['-j', 'link']);
  expect((JSON.parse(links.stdout) as Array<{ ifname: string }>).map((l) => l.ifname)).toEqual(['lo']);
  expect(readlinkSync('/proc/self/ns/net')).toBe(mine);
});

test('exec rejects on failure with output attached, or resolves with check: false', async () => {
  const ns = await sb.ns('execfail');
  const e = (await ns.exec('sh', ['-c', 'echo oops >&2; exit 3']).catch((x: unknown) => x)) as NetnsError & { exitCode: number; stderr: string };
  expect(e).toBeInstanceOf(NetnsError);
  expect(e.code).toBe('ERR_NETNS_EXEC_FAILED');
  expect(e.exitCode).toBe(3);
  expect(e.stderr).toBe('oops\n');
  const r = await ns.exec('sh', ['-c', 'exit 4'], { check: false });
  expect(r.exitCode).toBe(4);
  // a child that exits without reading a large input: no EPIPE escapes
  const early = await ns.exec('true', [], { input: 'x'.repeat(1 << 20) });
  expect(early.exitCode).toBe(0);
  const input = await ns.exec('cat', [], { input: 'hello' });
  expect(input.stdout).toBe('hello');
  await expect(ns.exec('', [])).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
});

test('spawn returns a ChildProcess in the namespace', async () => {
  const ns = await sb.ns('spawn');
  await ns.links.add({ kind: 'bridge', name: 'marker' });
  const child = ns.spawn('ip', ['-br', 'link']);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  expect(code).toBe(0);
  expect(out).toMatch(/^marker/m);
});
