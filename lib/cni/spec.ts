/**
 * The CNI specification's wire format: versions, error codes, the runtime's environment, and the
 * Result structure in each supported spec version. Pure functions, no kernel access.
 * (containernetworking/cni SPEC.md, spec 1.0.0 and 1.1.0, and the 0.3.x/0.4.0 result layout.)
 */
import type { Netns } from '../netns';

/** Spec versions this plugin speaks. 0.1.0/0.2.0 used another result layout (ip4/ip6) and are not supported. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const LATEST_VERSION = '1.1.0';

/** The spec's well-known error codes (1-99 reserved) and our plugin-specific one. */
export const CODES = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODING_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** 1.1.0 STATUS: the plugin cannot serve ADDs now */
  NOT_AVAILABLE: 50,
  /** 1.1.0 STATUS: not available, and existing containers may be affected */
  NOT_AVAILABLE_EXISTING: 51,
  /** what the reference plugins (libcni's skel) report for everything else */
  INTERNAL: 999,
} as const;

/** An error the plugin reports as the spec's error JSON on stdout with a non-zero exit. */
export class CniError extends Error {
  override name = 'CniError';
  constructor(readonly code: number, msg: string, readonly details?: string) {
    super(msg);
  }
  toJSON(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** Compares dotted versions numerically ("0.10.0" > "0.4.0"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: unknown): v is string {
  return typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function atLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
const COMMANDS: readonly Command[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'];

/** The runtime's parameters (CNI_* environment variables). */
export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs */
  args: Record<string, string>;
  /** CNI_PATH split on ':' */
  path: string[];
  /** the raw CNI_* variables, handed unchanged to delegated (IPAM) plugins */
  raw: Record<string, string>;
  /** where the plugin keeps its lock files: NETNS_KIT_CNI_RUN_DIR, default /run/netns-kit-cni */
  runDir: string;
  /** the runtime's network namespace: the bridge, the host veth and the NAT rules live there */
  host: Netns;
  /** the environment delegated plugins are started with (the runtime's own, CNI_* included) */
  environ: NodeJS.ProcessEnv;
}

/** Where an invocation acts: what the environment variables cannot say. */
export type CallSite = Pick<CniEnv, 'host' | 'environ'>;

/** The plugin's lock files and the resident helper's socket live here unless NETNS_KIT_CNI_RUN_DIR says otherwise. */
export const DEFAULT_RUN_DIR = '/run/netns-kit-cni';

/** The run directory an environment names (NETNS_KIT_CNI_RUN_DIR), else the default. */
export function runDirOf(env: NodeJS.ProcessEnv): string {
  return env.NETNS_KIT_CNI_RUN_DIR || DEFAULT_RUN_DIR;
}

/** Which variables each command requires (as libcni's skel enforces them). */
const REQUIRED: Record<Command, Array<keyof typeof VAR>> = {
  ADD: ['containerId', 'netns', 'ifname', 'path'],
  CHECK: ['containerId', 'netns', 'ifname', 'path'],
  DEL: ['containerId', 'ifname', 'path'],
  VERSION: [],
  GC: ['path'],
  STATUS: ['path'],
};
const VAR = {
  containerId: 'CNI_CONTAINERID',
  netns: 'CNI_NETNS',
  ifname: 'CNI_IFNAME',
  path: 'CNI_PATH',
} as const;

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Reads and checks the CNI_* variables; error code 4 names the offending variables. */
export function parseEnv(env: NodeJS.ProcessEnv, site: CallSite): CniEnv {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(CODES.INVALID_ENV, 'required env variables [CNI_COMMAND] missing');
  if (!(COMMANDS as readonly string[]).includes(command)) throw new CniError(CODES.INVALID_ENV, `unknown CNI_COMMAND: ${command}`);
  const cmd = command as Command;
  const missing = REQUIRED[cmd].filter((k) => !env[VAR[k]]).map((k) => VAR[k]);
  if (missing.length) throw new CniError(CODES.INVALID_ENV, `required env variables [${missing.join(',')}] missing`);
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId && !CONTAINER_ID.test(containerId)) {
    throw new CniError(CODES.INVALID_ENV, 'invalid characters in CNI_CONTAINERID', containerId);
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (ifname) {
    const why = ifnameProblem(ifname);
    if (why) throw new CniError(CODES.INVALID_ENV, `invalid CNI_IFNAME: ${why}`, ifname);
  }
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('CNI_') && v !== undefined) raw[k] = v;
  return {
    command: cmd,
    containerId,
    netns: env.CNI_NETNS ?? '',
    ifname,
    args: parseArgs(env.CNI_ARGS ?? ''),
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
    raw,
    runDir: runDirOf(env),
    ...site,
  };
}

/** The spec's rules for CNI_IFNAME: not empty, not . or .., under 16 bytes, no / : or whitespace. */
export function ifnameProblem(name: string): string | undefined {
  if (name === '.' || name === '..') return 'must not be "." or ".."';
  if (Buffer.byteLength(name) > 15) return 'must be shorter than 16 characters';
  if (/[/:\s]/.test(name)) return 'must not contain "/", ":" or whitespace';
  return undefined;
}

/** "FOO=BAR;ABC=123" -> { FOO: 'BAR', ABC: '123' }; a pair without "=" is a code 4 error. */
export function parseArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CODES.INVALID_ENV, `invalid CNI_ARGS pair "${pair}"`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function validNetworkName(name: unknown): name is string {
  return typeof name === 'string' && NETWORK_NAME.test(name);
}

/** The Result structure (spec 1.x layout; `version` on ips is added for 0.3.x/0.4.0 on output). */
export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}
export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}
export interface CniRoute {
  dst: string;
  gw?: string;
}
export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** A result as printed in `cniVersion`: 0.3.x/0.4.0 carry "version" on each IP, 1.x do not. */
export function encodeResult(r: CniResult, cniVersion: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion };
  if (r.interfaces?.length) {
    // interface.mtu is a 1.1.0 field; older readers get the fields they know.
    out.interfaces = r.interfaces.map((i) => {
      const { mtu, ...rest } = i;
      return atLeast(cniVersion, '1.1.0') && mtu !== undefined ? { ...rest, mtu } : rest;
    });
  }
  if (r.ips?.length) {
    out.ips = r.ips.map((ip) => (atLeast(cniVersion, '1.0.0') ? { ...ip } : { version: ip.address.includes(':') ? '6' : '4', ...ip }));
  }
  if (r.routes?.length) out.routes = r.routes;
  if (r.dns && Object.keys(r.dns).length) out.dns = r.dns;
  else if (!atLeast(cniVersion, '1.0.0')) out.dns = {};
  return out;
}

/** Reads a Result of any supported version (from a delegated plugin, or prevResult) into the 1.x layout. */
export function decodeResult(value: unknown, what: string): CniResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CniError(CODES.DECODING_FAILURE, `${what} is not a JSON object`);
  }
  const v = value as Record<string, unknown>;
  const r: CniResult = { cniVersion: typeof v.cniVersion === 'string' ? v.cniVersion : '' };
  if (v.interfaces !== undefined) {
    r.interfaces = arrayOf(v.interfaces, `${what}.interfaces`).map((i, n) => {
      const o = objectOf(i, `${what}.interfaces[${n}]`);
      const out: CniInterface = { name: str(o.name, `${what}.interfaces[${n}].name`) };
      if (o.mac !== undefined) out.mac = str(o.mac, `${what}.interfaces[${n}].mac`);
      if (o.sandbox !== undefined && o.sandbox !== '') out.sandbox = str(o.sandbox, `${what}.interfaces[${n}].sandbox`);
      if (typeof o.mtu === 'number') out.mtu = o.mtu;
      return out;
    });
  }
  if (v.ips !== undefined) {
    r.ips = arrayOf(v.ips, `${what}.ips`).map((i, n) => {
      const o = objectOf(i, `${what}.ips[${n}]`);
      const out: CniIpConfig = { address: str(o.address, `${what}.ips[${n}].address`) };
      if (o.gateway !== undefined && o.gateway !== '') out.gateway = str(o.gateway, `${what}.ips[${n}].gateway`);
      if (typeof o.interface === 'number') out.interface = o.interface;
      return out;
    });
  }
  if (v.routes !== undefined && v.routes !== null) {
    r.routes = arrayOf(v.routes, `${what}.routes`).map((i, n) => {
      const o = objectOf(i, `${what}.routes[${n}]`);
      const out: CniRoute = { dst: str(o.dst, `${what}.routes[${n}].dst`) };
      if (o.gw !== undefined && o.gw !== '') out.gw = str(o.gw, `${what}.routes[${n}].gw`);
      return out;
    });
  }
  if (v.dns !== undefined && v.dns !== null) r.dns = objectOf(v.dns, `${what}.dns`) as CniDns;
  return r;
}

function arrayOf(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new CniError(CODES.DECODING_FAILURE, `${what} must be an array`);
  return v;
}
function objectOf(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CniError(CODES.DECODING_FAILURE, `${what} must be an object`);
  return v as Record<string, unknown>;
}
function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new CniError(CODES.DECODING_FAILURE, `${what} must be a string`);
  return v;
}
