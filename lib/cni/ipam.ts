/**
 * IP address management as the spec describes it: the IPAM plugin named by `ipam.type` is found
 * on CNI_PATH and executed with the same environment (CNI_COMMAND set to the delegated command)
 * and the same network configuration on stdin; its Result or error JSON comes back on stdout.
 * `netns-kit-ipam` is served in-process by the built-in allocator instead.
 */
import { spawn } from 'node:child_process';
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { current } from '../netns';
import { spawn as spawnIn } from '../process';
import * as allocator from './allocator';
import { CODES, CniError, decodeResult, type CniEnv, type CniResult, type Command } from './spec';
import type { BridgeConf } from './config';

/** Finds an executable plugin on CNI_PATH (the spec leaves the search to the caller of the plugin). */
export async function findPlugin(type: string, dirs: string[]): Promise<string> {
  for (const d of dirs) {
    const p = path.join(d, type);
    try {
      await fs.access(p, constants.X_OK);
      if ((await fs.stat(p)).isFile()) return p;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CODES.INTERNAL, `failed to find plugin "${type}" in path [${dirs.join(' ')}]`);
}

/** Runs a delegated plugin and returns its stdout, or throws its error JSON as a CniError. */
export async function execPlugin(file: string, command: Command, env: CniEnv, stdin: string): Promise<string> {
  const childEnv: NodeJS.ProcessEnv = { ...env.environ, ...env.raw, CNI_COMMAND: command };
  return new Promise((resolve, reject) => {
    // A plugin runs in the runtime's namespace. The resident helper serves callers from other
    // namespaces than its own: there the child enters the caller's first.
    const options = { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'] };
    const child = env.host.path === current().path ? spawn(file, [], options) : spawnIn(env.host.path, file, [], options);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new CniError(CODES.INTERNAL, `failed to run ${file}`, e.message)));
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString();
      if (code === 0) return resolve(stdout);
      let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      try {
        parsed = JSON.parse(stdout) as typeof parsed;
      } catch {
        // not the spec's error JSON
      }
      if (parsed && typeof parsed.code === 'number' && typeof parsed.msg === 'string') {
        return reject(new CniError(parsed.code, parsed.msg, typeof parsed.details === 'string' ? parsed.details : undefined));
      }
      const how = signal ? `killed by ${signal}` : `exit code ${code}`;
      reject(new CniError(CODES.INTERNAL, `${path.basename(file)} failed (${how})`, (Buffer.concat(err).toString() || stdout).trim()));
    });
    child.stdin!.on('error', () => undefined); // a plugin that exits without reading stdin
    child.stdin!.end(stdin);
  });
}

/** Refuses a missing, unknown or (built-in) invalid IPAM configuration before ADD changes anything. */
export async function ipamPreflight(conf: BridgeConf, env: CniEnv): Promise<void> {
  if (!conf.ipam) throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'network configuration has no "ipam"', 'the bridge network needs an IPAM plugin');
  if (conf.ipam.type === allocator.BUILTIN_IPAM) allocator.parseAllocatorConf(conf.ipam);
  else await findPlugin(conf.ipam.type, env.path);
}

/** The IPAM step of a command; ADD returns the (abbreviated) Result, the others nothing. */
export async function ipam(command: Command, conf: BridgeConf, env: CniEnv): Promise<CniResult | undefined> {
  if (!conf.ipam) {
    if (command === 'ADD') throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'network configuration has no "ipam"', 'the bridge network needs an IPAM plugin');
    return undefined;
  }
  if (conf.ipam.type === allocator.BUILTIN_IPAM) return builtin(command, conf, env);
  const file = await findPlugin(conf.ipam.type, env.path);
  const stdout = await execPlugin(file, command, env, JSON.stringify(conf.raw));
  if (command !== 'ADD') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch (e) {
    throw new CniError(CODES.DECODING_FAILURE, `cannot decode the result of IPAM plugin ${conf.ipam.type}`, (e as Error).message);
  }
  const result = decodeResult(value, `${conf.ipam.type} result`);
  if (!result.ips?.length) throw new CniError(CODES.INTERNAL, `IPAM plugin ${conf.ipam.type} returned missing IP config`);
  return result;
}

async function builtin(command: Command, conf: BridgeConf, env: CniEnv): Promise<CniResult | undefined> {
  const a = allocator.parseAllocatorConf(conf.ipam!);
  switch (command) {
    case 'ADD':
      return allocator.allocate(a, conf.name, env.containerId, env.ifname);
    case 'DEL':
      await allocator.release(a, conf.name, env.containerId, env.ifname);
      return undefined;
    case 'CHECK':
      await allocator.verify(a, conf.name, env.containerId, env.ifname, (conf.prevResult?.ips ?? []).map((i) => i.address));
      return undefined;
    case 'GC':
      await allocator.collect(a, conf.name, conf.validAttachments ?? []);
      return undefined;
    case 'STATUS':
      try {
        await fs.mkdir(a.dataDir, { recursive: true });
        await fs.access(a.dataDir, constants.W_OK);
      } catch (e) {
        throw new CniError(CODES.NOT_AVAILABLE, `address store ${a.dataDir} is not writable`, (e as Error).message);
      }
      return undefined;
    default:
      return undefined;
  }
}
