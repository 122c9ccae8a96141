/**
 * The plugin's entry point as the spec defines the contract: CNI_* environment plus the network
 * configuration on stdin in; a Result (ADD), nothing (DEL, CHECK, GC, STATUS), version info
 * (VERSION) or the error JSON on stdout, with exit code 0 for success and 1 for an error.
 *
 * The same executable also serves as the standalone IPAM plugin `netns-kit-ipam` when the
 * configuration's `type` is that name (e.g. chained under another main plugin).
 */
import * as allocator from './allocator';
import * as network from './bridge-network';
import { configVersion, decodeConfig, parseBridgeConf, parseIpamConf } from './config';
import { ipam } from './ipam';
import { current, type Netns } from '../netns';
import { atLeast, CODES, CniError, encodeResult, isSupportedVersion, LATEST_VERSION, parseEnv, SUPPORTED_VERSIONS, type CniEnv } from './spec';

export interface PluginOutput {
  stdout: string;
  exitCode: number;
}

/** Commands and the spec version that introduced them. */
const SINCE: Record<string, string> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

function versionInfo(stdin: string): string {
  let requested: unknown;
  try {
    requested = stdin.trim() ? (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion : undefined;
  } catch {
    requested = undefined;
  }
  const cniVersion = isSupportedVersion(requested) ? requested : LATEST_VERSION;
  return JSON.stringify({ cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] });
}

export interface RunOptions {
  /**
   * The name the executable was invoked by. Installed (or linked) as `netns-kit-ipam` it is an
   * IPAM plugin: a main plugin delegating to it passes its own configuration, whose `type` is the
   * main plugin's, so the executable's name is what tells the two roles apart.
   */
  invokedAs?: string;
  /**
   * The runtime's network namespace, when it is not this process's own: the resident helper
   * serves callers in other namespaces. Default: `current()`, as a plugin process runs.
   */
  host?: Netns;
  /**
   * The environment delegated (IPAM) plugins are started with, the CNI_* variables of `envVars`
   * on top. Default: this process's environment (what an executable plugin has anyway).
   */
  environ?: NodeJS.ProcessEnv;
}

/** Runs one plugin invocation; never throws (every failure becomes the spec's error JSON). */
export async function runPlugin(envVars: NodeJS.ProcessEnv, stdin: string, options: RunOptions = {}): Promise<PluginOutput> {
  let cniVersion = LATEST_VERSION;
  try {
    // An unknown version in the input still deserves an error in a version the caller can read.
    try {
      const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
      if (isSupportedVersion(v)) cniVersion = v;
    } catch {
      // reported below as a decoding failure, where it matters
    }
    const env = parseEnv(envVars, { host: options.host ?? current(), environ: options.environ ?? process.env });
    if (env.command === 'VERSION') return { stdout: versionInfo(stdin), exitCode: 0 };
    const raw = decodeConfig(stdin);
    cniVersion = configVersion(raw);
    const since = SINCE[env.command];
    if (since && !atLeast(cniVersion, since)) {
      throw new CniError(CODES.INCOMPATIBLE_VERSION, `config version does not allow ${env.command}`, `${env.command} needs cniVersion ${since} or later, config is ${cniVersion}`);
    }
    if (options.invokedAs === allocator.BUILTIN_IPAM || raw.type === allocator.BUILTIN_IPAM) return await runIpam(raw, env);
    const conf = parseBridgeConf(raw, env.args);
    switch (env.command) {
      case 'ADD': {
        const result = await network.add(conf, env);
        return { stdout: JSON.stringify(encodeResult(result, cniVersion)), exitCode: 0 };
      }
      case 'DEL':
        await network.del(conf, env);
        return { stdout: '', exitCode: 0 };
      case 'CHECK':
        await network.check(conf, env);
        return { stdout: '', exitCode: 0 };
      case 'GC':
        await network.gc(conf, env);
        return { stdout: '', exitCode: 0 };
      case 'STATUS':
        await network.status(conf, env);
        return { stdout: '', exitCode: 0 };
    }
    throw new CniError(CODES.INVALID_ENV, `unknown CNI_COMMAND: ${String(env.command)}`);
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CODES.INTERNAL, (e as Error).message ?? String(e));
    return { stdout: JSON.stringify(err.toJSON(cniVersion)), exitCode: 1 };
  }
}

/** `netns-kit-ipam` as an IPAM plugin of its own: the configuration's `ipam` section drives it. */
async function runIpam(raw: Record<string, unknown>, env: CniEnv): Promise<PluginOutput> {
  const conf = parseIpamConf(raw);
  const result = await ipam(env.command, { ...conf, ipam: { ...conf.ipam!, type: allocator.BUILTIN_IPAM } }, env);
  if (env.command === 'ADD' && result) return { stdout: JSON.stringify(encodeResult(result, conf.cniVersion)), exitCode: 0 };
  return { stdout: '', exitCode: 0 };
}
