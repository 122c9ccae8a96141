/**
 * Drives CNI plugins exactly as a runtime does: the plugin executable is run as a subprocess
 * inside the sandbox "host" namespace (nsenter --net), with the CNI_* environment and the network
 * configuration on stdin; a configuration list is executed the way the spec tells runtimes to
 * (name/cniVersion injected, capabilities as runtimeConfig, prevResult chained, DEL in reverse).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Netns } from '../../lib/index';

/** Debian's reference plugins. */
export const REFERENCE_DIR = '/usr/lib/cni';
/** The compiled plugin (npm run build makes it executable). */
export const PLUGIN = path.resolve(__dirname, '..', '..', 'bin', 'netns-kit-cni.js');

/** The native client (binding.gyp builds it next to the addon): what users install as the plugin. */
export const CLIENT = path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'netns-kit-cni');

/** The plugins' machine-wide state (the NAT lock, the helper's socket) stays in the test's plugin directory. */
let runDir: string | undefined;

/**
 * A temporary plugin directory holding `netns-kit-cni` and `netns-kit-ipam`: links to the Node
 * plugin, or with `client` to the native client (which hands calls to a resident helper).
 */
export function pluginDir(options: { client?: boolean } = {}): { dir: string; cniPath: string; runDir: string; cleanup(): void } {
  const target = options.client ? CLIENT : PLUGIN;
  if (!existsSync(target)) throw new Error(`${target} is missing: build it first (npm run install / node-gyp build)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nk-cni-bin-'));
  symlinkSync(target, path.join(dir, 'netns-kit-cni'));
  symlinkSync(target, path.join(dir, 'netns-kit-ipam'));
  runDir = path.join(dir, 'run');
  return { dir, cniPath: `${dir}:${REFERENCE_DIR}`, runDir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A resident helper (`netns-kit-cni --serve --verbose`) as a child process, and what it printed. */
export interface Helper {
  child: ChildProcess;
  socket: string;
  /** its stdout: the "listening" line, and the "stopped after" line */
  stdout(): string;
  /** its stderr so far: one line per call served or declined */
  log(): string[];
  /** SIGTERM (SIGKILL if it has not exited after `graceMs`), then its exit code */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts a helper on `dir` and resolves once it prints its "listening" line (rejects if it exits
 * first, or after 20 s). `inNetns` runs it inside that namespace file (nsenter --net execs node
 * itself, no fork: the child is the helper) rather than the machine's: tests keep the helper in a
 * sandbox namespace, so even a helper that wrongly acted in its own namespace could never touch
 * the machine's.
 */
export function startHelper(dir: string, options: { inNetns?: string } = {}): Promise<Helper> {
  const argv = [process.execPath, PLUGIN, '--serve', '--verbose'];
  const [cmd, ...args] = options.inNetns ? ['nsenter', `--net=${options.inNetns}`, '--', ...argv] : argv;
  const child = spawn(cmd, args, { env: { ...process.env, NETNS_KIT_CNI_RUN_DIR: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const helper: Helper = {
    child,
    socket: path.join(dir, 'resident.sock'),
    stdout: () => out,
    log: () => err.split('\n').filter(Boolean),
    async stop(graceMs = 10000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void helper.stop(1000);
      reject(new Error(`the helper did not listen within 20 s: ${err}${out}`));
    }, 20000);
    child.stdout!.on('data', () => {
      if (out.includes('resident helper listening on')) {
        clearTimeout(timer);
        resolve(helper);
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the helper exited (${code}) before listening: ${err}${out}`));
    });
  });
}

export interface Invocation {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  cniPath?: string;
  /** further or replacing environment variables; `undefined` removes one */
  env?: Record<string, string | undefined>;
}

export interface PluginRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON */
  json?: Record<string, unknown>;
}

/** Runs one plugin executable inside `host` with env + stdin, as a runtime would. */
export async function invoke(host: Netns, file: string, inv: Invocation, stdin: string): Promise<PluginRun> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: inv.command };
  if (runDir) env.NETNS_KIT_CNI_RUN_DIR = runDir;
  if (inv.containerId !== undefined) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns !== undefined) env.CNI_NETNS = inv.netns;
  if (inv.ifname !== undefined) env.CNI_IFNAME = inv.ifname;
  if (inv.args !== undefined) env.CNI_ARGS = inv.args;
  if (inv.cniPath !== undefined) env.CNI_PATH = inv.cniPath;
  for (const [k, v] of Object.entries(inv.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const r = await host.exec(file, [], { env, input: stdin, check: false });
  const out: PluginRun = { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
  if (r.stdout.trim()) {
    try {
      out.json = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      // not JSON: left for the test to judge
    }
  }
  return out;
}

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown>>;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  /** runtimeConfig values offered to plugins that declare the capability */
  capabilities?: Record<string, unknown>;
}

/** A minimal libcni: runs a configuration list for one attachment. */
export class Runtime {
  constructor(private readonly host: Netns, private readonly cniPath: string) {}

  private pluginConf(list: ConfList, p: Record<string, unknown>, a: Attachment, prevResult?: unknown): string {
    const conf: Record<string, unknown> = { ...p, name: list.name, cniVersion: list.cniVersion };
    const caps = (p.capabilities ?? {}) as Record<string, boolean>;
    const runtimeConfig: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a.capabilities ?? {})) if (caps[k]) runtimeConfig[k] = v;
    if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
    if (prevResult !== undefined) conf.prevResult = prevResult;
    return JSON.stringify(conf);
  }

  private async exec(list: ConfList, p: Record<string, unknown>, command: string, a: Attachment, prev?: unknown): Promise<PluginRun> {
    const file = await this.find(String(p.type));
    return invoke(this.host, file, { command, containerId: a.containerId, netns: a.netns, ifname: a.ifname, cniPath: this.cniPath }, this.pluginConf(list, p, a, prev));
  }

  private async find(type: string): Promise<string> {
    for (const d of this.cniPath.split(':')) {
      try {
        await access(path.join(d, type));
        return path.join(d, type);
      } catch {
        // next directory
      }
    }
    throw new Error(`plugin ${type} not found in ${this.cniPath}`);
  }

  /** ADD through the list; resolves with the final Result, rejects with the failing plugin's output. */
  async add(list: ConfList, a: Attachment): Promise<Record<string, unknown>> {
    let prev: unknown;
    for (const p of list.plugins) {
      const r = await this.exec(list, p, 'ADD', a, prev);
      if (r.exitCode !== 0) throw Object.assign(new Error(`ADD ${String(p.type)} failed: ${r.stdout} ${r.stderr}`), { run: r });
      prev = r.json;
    }
    return prev as Record<string, unknown>;
  }

  /** CHECK through the list with the ADD result. */
  async check(list: ConfList, a: Attachment, result: unknown): Promise<PluginRun> {
    let last: PluginRun = { exitCode: 0, stdout: '', stderr: '' };
    for (const p of list.plugins) {
      last = await this.exec(list, p, 'CHECK', a, result);
      if (last.exitCode !== 0) return last;
    }
    return last;
  }

  /** DEL in reverse order. */
  async del(list: ConfList, a: Attachment, result?: unknown): Promise<void> {
    for (const p of [...list.plugins].reverse()) {
      const r = await this.exec(list, p, 'DEL', a, result);
      if (r.exitCode !== 0) throw new Error(`DEL ${String(p.type)} failed: ${r.stdout} ${r.stderr}`);
    }
  }
}
