/**
 * The resident helper: `netns-kit-cni --serve` keeps one Node process running, and the plugin's
 * small native client (build/Release/netns-kit-cni, native/cni_client.c) hands each call to it
 * over a Unix socket instead of starting Node. A call served here runs the same `runPlugin` as a
 * plugin process, with the caller's environment, stdin and network namespace, so the two are
 * indistinguishable to the runtime except in latency.
 *
 * The helper is optional by construction. The client runs the plugin itself (execs Node on
 * dist/bin/netns-kit-cni.js with the same stdin) when:
 *   - there is no socket, or nobody accepts on it (no helper, or a helper that died);
 *   - the helper declines the call (below);
 *   - the connection breaks before the answer arrives (the helper stopped mid-call: a plugin
 *     call is safe to repeat, DEL by the spec, ADD because it undoes its own steps on failure).
 *
 * The helper declines a call it cannot serve exactly as a plugin process would:
 *   - the caller is in another mount or user namespace (paths such as CNI_NETNS, CNI_PATH and
 *     the IPAM data directory would mean other files; a rootless runtime's user namespace gives
 *     other rights);
 *   - the caller's network namespace cannot be confirmed: the client reports its pid and the
 *     (st_dev, st_ino) of its /proc/self/ns/{net,mnt,user}, and /proc/PID/ns/* here must show the
 *     same (a client in another pid namespace, or one that is already gone, fails this);
 *   - CNI_NETNS is a relative path on ADD, CHECK or DEL (it would be resolved against another
 *     working directory).
 * Only root can connect: the socket is created mode 0600 in the run directory.
 *
 * Wire format (all integers unsigned 32-bit little-endian):
 *   request   "NKC1" u32:length, then `length` bytes of fields; a field is u32:keylen key
 *             u32:vallen value. Keys: pid, netns, mntns, userns ("DEV:INO"), argv0 (the name
 *             the client was invoked by), env (one per variable, "NAME=value"), stdin.
 *   answer    'R' u32:exitcode u32:length stdout   the call ran; print stdout, exit with the code
 *             'D' u32:length reason                declined; the client runs the plugin itself
 */
import { promises as fs, statSync, type BigIntStats } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { open, releaseSocketsOf, type Netns } from '../netns';
import { runPlugin } from './plugin';
import { runDirOf } from './spec';

/** The socket's name in the run directory (NETNS_KIT_CNI_RUN_DIR, default /run/netns-kit-cni). */
export const SOCKET_NAME = 'resident.sock';
const MAGIC = 'NKC1';
/** A request larger than this is refused: a network configuration is a few kilobytes. */
const MAX_REQUEST = 16 * 1024 * 1024;

export interface ResidentOptions {
  /** run directory holding the socket (default: NETNS_KIT_CNI_RUN_DIR, else /run/netns-kit-cni) */
  runDir?: string;
  /** one line per call served or declined (default: none) */
  log?: (line: string) => void;
}

export interface ResidentServer {
  /** the socket clients connect to */
  readonly socketPath: string;
  /** calls served so far, and calls declined */
  readonly stats: { served: number; declined: number };
  /** stops accepting, waits for the calls in progress, removes the socket */
  close(): Promise<void>;
}

/** One decoded request. */
export interface ResidentRequest {
  pid: number;
  netns: string;
  mntns: string;
  userns: string;
  argv0: string;
  env: NodeJS.ProcessEnv;
  stdin: string;
}

/** Decodes the fields of a request (after the 8-byte header); throws on anything malformed. */
export function decodeRequest(body: Buffer): ResidentRequest {
  const fields: Record<string, string> = {};
  const env: NodeJS.ProcessEnv = {};
  let stdin = '';
  let at = 0;
  const take = (): Buffer => {
    if (at + 4 > body.length) throw new Error('truncated field');
    const n = body.readUInt32LE(at);
    at += 4;
    if (at + n > body.length) throw new Error('truncated field');
    const b = body.subarray(at, at + n);
    at += n;
    return b;
  };
  while (at < body.length) {
    const key = take().toString('utf8');
    const value = take();
    if (key === 'env') {
      const s = value.toString('utf8');
      const eq = s.indexOf('=');
      if (eq > 0) env[s.slice(0, eq)] = s.slice(eq + 1);
    } else if (key === 'stdin') {
      stdin = value.toString('utf8');
    } else {
      fields[key] = value.toString('utf8');
    }
  }
  const pid = Number(fields.pid);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error('no pid');
  for (const k of ['netns', 'mntns', 'userns']) if (!/^\d+:\d+$/.test(fields[k] ?? '')) throw new Error(`no ${k}`);
  return { pid, netns: fields.netns, mntns: fields.mntns, userns: fields.userns, argv0: fields.argv0 ?? 'netns-kit-cni', env, stdin };
}

function idOf(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

async function nsId(p: string): Promise<string | undefined> {
  try {
    return idOf(await fs.stat(p, { bigint: true }));
  } catch {
    return undefined;
  }
}

/** The answer for a call that ran: the client prints `stdout` and exits with `code`. */
function served(code: number, stdout: string): Buffer {
  const body = Buffer.from(stdout, 'utf8');
  const head = Buffer.alloc(9);
  head.write('R', 0);
  head.writeUInt32LE(code >>> 0, 1);
  head.writeUInt32LE(body.length, 5);
  return Buffer.concat([head, body]);
}

/** The answer for a call this process will not run: the client runs the plugin itself. */
function declined(reason: string): Buffer {
  const body = Buffer.from(reason, 'utf8');
  const head = Buffer.alloc(5);
  head.write('D', 0);
  head.writeUInt32LE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Why this process cannot serve the call as a plugin process of the caller would, or undefined. */
async function declineReason(req: ResidentRequest, own: { mnt: string; user: string }): Promise<string | undefined> {
  if (req.mntns !== own.mnt) return 'caller is in another mount namespace';
  if (req.userns !== own.user) return 'caller is in another user namespace';
  const base = `/proc/${req.pid}/ns`;
  const [net, mnt, user] = await Promise.all([nsId(`${base}/net`), nsId(`${base}/mnt`), nsId(`${base}/user`)]);
  if (net !== req.netns || mnt !== req.mntns || user !== req.userns) return `caller pid ${req.pid} is not visible from here (another pid namespace, or gone)`;
  // Only the commands that open CNI_NETNS care where it points: libcni's VERSION query sets it to
  // the placeholder "dummy" (Podman asks VERSION before every ADD and DEL).
  const netnsVar = req.env.CNI_NETNS;
  const usesNetns = ['ADD', 'CHECK', 'DEL'].includes(req.env.CNI_COMMAND ?? '');
  if (usesNetns && netnsVar && !path.isAbsolute(netnsVar)) return 'CNI_NETNS is a relative path';
  return undefined;
}

/** The caller's network namespace as a handle bound to the identity the client reported. */
async function callerNamespace(req: ResidentRequest, ownNet: string): Promise<Netns | undefined> {
  if (req.netns === ownNet) return undefined; // this process's own: runPlugin's default
  const ns = await open({ pid: req.pid });
  // open() binds the handle to what /proc/PID/ns/net is now; it must still be what the client saw.
  if (!ns.identity || `${ns.identity.dev}:${ns.identity.ino}` !== req.netns) throw new Error('caller namespace changed');
  return ns;
}

async function socketAnswers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts the resident helper on `<runDir>/resident.sock`. Refuses to start when another helper
 * answers there; a socket file nobody answers on (a helper that was killed) is replaced.
 */
export async function serveResident(options: ResidentOptions = {}): Promise<ResidentServer> {
  if (process.getuid?.() !== 0) throw new Error('the resident helper runs as root (it serves plugin calls, which change the network)');
  const runDir = options.runDir ?? runDirOf(process.env);
  const socketPath = path.join(runDir, SOCKET_NAME);
  const log = options.log ?? (() => undefined);
  await fs.mkdir(runDir, { recursive: true, mode: 0o755 });
  if (await socketAnswers(socketPath)) throw new Error(`a resident helper already answers on ${socketPath}`);
  await fs.rm(socketPath, { force: true });

  const own = {
    net: idOf(statSync('/proc/self/ns/net', { bigint: true })),
    mnt: idOf(statSync('/proc/self/ns/mnt', { bigint: true })),
    user: idOf(statSync('/proc/self/ns/user', { bigint: true })),
  };
  const stats = { served: 0, declined: 0 };
  const inFlight = new Set<Promise<void>>();

  const handle = async (sock: net.Socket, body: Buffer): Promise<void> => {
    let req: ResidentRequest;
    try {
      req = decodeRequest(body);
    } catch (e) {
      stats.declined++;
      sock.end(declined(`malformed request: ${(e as Error).message}`));
      return;
    }
    let why = await declineReason(req, own);
    let host: Netns | undefined;
    if (!why) {
      try {
        host = await callerNamespace(req, own.net);
      } catch (e) {
        why = `cannot open the caller's network namespace: ${(e as Error).message}`;
      }
    }
    if (why) {
      stats.declined++;
      log(`declined ${req.env.CNI_COMMAND ?? '?'} from pid ${req.pid}: ${why}`);
      sock.end(declined(why));
      return;
    }
    const t0 = process.hrtime.bigint();
    let out;
    try {
      out = await runPlugin(req.env, req.stdin, { invokedAs: req.argv0, host, environ: req.env });
    } finally {
      // A cached netlink socket keeps its namespace alive: a plugin process drops them when it
      // exits, a resident one must not keep a container's (or a caller's) namespace after the call.
      host?.release();
      if (req.env.CNI_NETNS) releaseSocketsOf(req.env.CNI_NETNS);
    }
    stats.served++;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    log(`served ${req.env.CNI_COMMAND ?? '?'} ${req.env.CNI_CONTAINERID ?? ''} as ${req.argv0} for pid ${req.pid}: exit ${out.exitCode}, ${ms.toFixed(1)} ms`);
    sock.end(served(out.exitCode, out.stdout));
  };

  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let need = -1;
    let started = false;
    sock.on('error', () => undefined); // a client that went away: nothing to tell it
    sock.on('data', (chunk: Buffer) => {
      if (started) return;
      buf = Buffer.concat([buf, chunk]);
      if (need < 0 && buf.length >= 8) {
        if (buf.subarray(0, 4).toString('latin1') !== MAGIC) {
          started = true;
          stats.declined++;
          sock.end(declined('unknown protocol'));
          return;
        }
        need = buf.readUInt32LE(4);
        if (need > MAX_REQUEST) {
          started = true;
          stats.declined++;
          sock.end(declined('request too large'));
          return;
        }
      }
      if (need >= 0 && buf.length >= 8 + need) {
        started = true;
        const p = handle(sock, buf.subarray(8, 8 + need)).catch((e: unknown) => {
          // runPlugin never throws; this is a fault of the helper itself: let the client run the plugin.
          log(`internal error: ${(e as Error).stack ?? String(e)}`);
          sock.end(declined('internal error'));
        });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
    });
  });

  // The socket is made 0600 from the start (umask around bind), so no one but root ever connects.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  await fs.chmod(socketPath, 0o600);

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    stats,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.allSettled([...inFlight]);
        await fs.rm(socketPath, { force: true });
      })();
      return closing;
    },
  };
}
