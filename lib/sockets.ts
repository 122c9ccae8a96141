/**
 * Sockets inside a namespace, used from this process: TCP servers and clients, UDP sockets and raw
 * descriptors whose network namespace is another one than the process's.
 *
 * A socket belongs to the namespace it was created in, for its whole life. So the addon creates it
 * on one of its own threads inside the namespace (socket(2), options, bind(2), a non-blocking
 * connect(2)) and hands the descriptor over; Node wraps it in its ordinary classes (`net.Server`,
 * `net.Socket`, `dgram.Socket`). The main thread never changes namespace, no process is started,
 * and everything after creation is plain Node: events, streams, TLS, HTTP.
 *
 * See docs/sockets.md.
 */
import dgram from 'node:dgram';
import { closeSync } from 'node:fs';
import net, { type AddressInfo, type LookupFunction } from 'node:net';
import { call, fromNative, invalid, NetnsError, type NetnsErrorCode } from './errors';
import { describe, familyOf, type Family } from './ip';
import { native, type NativeEndpoint, type NativeSocketSpec } from './native';
import * as validate from './validate';

/** What a socket call needs of a namespace: its file and its name for messages (a `Netns`). */
export interface SocketTarget {
  readonly path: string;
  /** the handle's bound reference (path + identity: ESTALE once the path holds another namespace) */
  readonly ref: string;
  readonly label: string;
}

export interface ListenOptions {
  /** IP address to listen on, IPv6 with an optional zone (`fe80::1%eth0`). Default `::` (dual-stack; `0.0.0.0` where the kernel has no IPv6). */
  host?: string;
  /** 0 picks a free port (read it from the result). */
  port: number;
  /** Length of the accept queue. Default 511, as Node. */
  backlog?: number;
  /** IPv6 only, no IPv4-mapped connections (IPV6_V6ONLY). Default false. */
  ipv6Only?: boolean;
  /** SO_REUSEADDR. Default true, as Node (libuv) sets it for every TCP server. */
  reuseAddr?: boolean;
}

export interface ConnectOptions {
  /** An IP address (IPv6 with an optional zone), or a name resolved by `lookup`. */
  host: string;
  port: number;
  /** Source address to bind first (must exist inside the namespace). */
  localAddress?: string;
  /** Source port to bind first. */
  localPort?: number;
  /** Address family to ask `lookup` for; must match `host` when that is an address. */
  family?: 4 | 6;
  /**
   * Milliseconds until the connection must be established, else ETIMEDOUT (and the descriptor is
   * closed). Unlike `net.connect`'s `timeout`, this is not an idle timeout. Default: none (the
   * kernel gives up after its SYN retries, about two minutes).
   */
  timeout?: number;
  /** Aborting rejects with ERR_NETNS_ABORTED and closes the descriptor. */
  signal?: AbortSignal;
  /**
   * Resolves a `host` that is not an IP address, with `dns.lookup`'s signature (`dns.lookup`
   * itself works). DNS is the caller's choice: `dns.lookup` asks this process's resolver, not the
   * namespace's (see docs/sockets.md). Without it, `host` must be an address.
   */
  lookup?: LookupFunction;
  /** Passed to the `net.Socket`. Default false, as Node. */
  allowHalfOpen?: boolean;
}

export interface DgramOptions {
  type: 'udp4' | 'udp6';
  /** Address to bind (IPv6 with an optional zone). Default the wildcard of the type's family. */
  address?: string;
  /** Port to bind; 0 (default) picks a free one. */
  port?: number;
  /** SO_REUSEADDR. Default false. */
  reuseAddr?: boolean;
  /** udp6 only: IPV6_V6ONLY. Default false (the namespace's net.ipv6.bindv6only). */
  ipv6Only?: boolean;
  /** Passed to the dgram.Socket: how `send()` resolves names (runs in this process, see `ConnectOptions.lookup`). */
  lookup?: LookupFunction;
}

export interface RawSocketOptions {
  type: 'tcp' | 'udp' | 'raw';
  family: 4 | 6;
  /** IPPROTO_* number. Default 0 for tcp/udp; for raw, ICMP (1) or ICMPv6 (58). */
  protocol?: number;
}

interface Host {
  address: string;
  scope?: string;
  family: Family;
}

/** An IP literal, IPv6 with an optional %zone (an interface name inside the namespace). */
function ipLiteral(text: string, what: string): Host | undefined {
  const pct = text.indexOf('%');
  const address = pct < 0 ? text : text.slice(0, pct);
  const family = familyOf(address);
  if (family === undefined) return undefined;
  if (pct >= 0) {
    if (family !== 6) throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} ${JSON.stringify(text)}: only IPv6 addresses take a %zone`);
    return { address, family, scope: validate.ifname(text.slice(pct + 1), `${what} zone`) };
  }
  return { address, family };
}

function address(v: unknown, what: string, family?: Family): Host {
  if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} must be an IP address, got ${describe(v)}`);
  const h = ipLiteral(v, what);
  if (!h) throw invalid('ERR_NETNS_INVALID_ADDRESS', `${what} is not an IP address: ${JSON.stringify(v)}`);
  if (family !== undefined && h.family !== family) throw invalid('ERR_NETNS_FAMILY_MISMATCH', `${what} ${v} is IPv${h.family}, expected IPv${family}`);
  return h;
}

function port(v: unknown, what: string, min: number): number {
  return validate.integer(v, what, min, 65535, 'ERR_NETNS_INVALID_PORT');
}

function endpoint(h: Host | undefined, p: number): NativeEndpoint {
  const e: NativeEndpoint = { address: h?.address ?? '', port: p };
  if (h?.scope) e.scope = h.scope;
  return e;
}

function hostPort(h: Host, p: number): string {
  const a = h.scope ? `${h.address}%${h.scope}` : h.address;
  return h.family === 6 ? `[${a}]:${p}` : `${a}:${p}`;
}

function familyArg(v: unknown): Family {
  if (v !== 4 && v !== 6) throw invalid('ERR_NETNS_INVALID_ARG', `family must be 4 or 6, got ${describe(v)}`);
  return v;
}

/** Native failures point at the line that called us, not at the addon's settlement. */
function pointAt(stack: string | undefined): (e: unknown) => never {
  return (e) => {
    if (e instanceof NetnsError && stack) e.stack = `NetnsError: ${e.message}\n${stack}`;
    throw e;
  };
}

function signalOf(v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw invalid('ERR_NETNS_INVALID_ARG', `signal must be an AbortSignal, got ${describe(v)}`);
  return v;
}

function aborted(signal: AbortSignal, what: string): NetnsError {
  const e = invalid('ERR_NETNS_ABORTED', `${what} aborted`);
  Object.defineProperty(e, 'cause', { value: signal.reason, enumerable: false });
  return e;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to leak
  }
}

interface ConnectPlan {
  host?: Host;
  name?: string;
  port: number;
  local?: Host;
  localPort?: number;
  family?: Family;
  timeout?: number;
  signal?: AbortSignal;
  lookup?: LookupFunction;
  allowHalfOpen: boolean;
}

const CONNECT_KEYS = ['host', 'port', 'localAddress', 'localPort', 'family', 'timeout', 'signal', 'lookup', 'allowHalfOpen'] as const;

/** Checks connect options completely; nothing is created before this returns. */
function planConnect(options: unknown): ConnectPlan {
  const o = validate.object(options, 'connect options');
  validate.knownKeys(o, 'connect options', CONNECT_KEYS);
  const family = o.family === undefined ? undefined : familyArg(o.family);
  const lookup = o.lookup;
  if (lookup !== undefined && typeof lookup !== 'function') throw invalid('ERR_NETNS_INVALID_ARG', `lookup must be a function, got ${describe(lookup)}`);
  if (typeof o.host !== 'string' || o.host.length === 0 || o.host.length > 255) throw invalid('ERR_NETNS_INVALID_ARG', `host must be an IP address or a name, got ${describe(o.host)}`);
  const plan: ConnectPlan = {
    port: port(o.port, 'port', 1),
    family,
    lookup: lookup as LookupFunction | undefined,
    allowHalfOpen: o.allowHalfOpen === undefined ? false : validate.bool(o.allowHalfOpen, 'allowHalfOpen'),
    signal: signalOf(o.signal),
  };
  const literal = ipLiteral(o.host, 'host');
  if (literal) {
    if (family !== undefined && literal.family !== family) throw invalid('ERR_NETNS_FAMILY_MISMATCH', `host ${o.host} is IPv${literal.family}, but family is ${family}`);
    plan.host = literal;
  } else if (plan.lookup) {
    if (!/^[A-Za-z0-9_.-]+$/.test(o.host)) throw invalid('ERR_NETNS_INVALID_ARG', `host ${JSON.stringify(o.host)} is neither an IP address nor a host name`);
    plan.name = o.host;
  } else {
    throw invalid('ERR_NETNS_INVALID_ADDRESS', `host ${JSON.stringify(o.host)} is not an IP address; pass a lookup function to resolve names (DNS inside a namespace is the caller's choice)`);
  }
  if (o.localAddress !== undefined) plan.local = address(o.localAddress, 'localAddress', plan.host?.family ?? plan.family);
  if (o.localPort !== undefined) plan.localPort = port(o.localPort, 'localPort', 0);
  if (o.timeout !== undefined) plan.timeout = validate.integer(o.timeout, 'timeout', 1, 2 ** 31 - 1);
  return plan;
}

/** Runs the caller's lookup for one address of the wanted family. */
function resolve(plan: ConnectPlan & { name: string }): Promise<Host> {
  return new Promise((ok, fail) => {
    const wanted = plan.family ?? plan.local?.family ?? 0;
    plan.lookup!(plan.name, { family: wanted, all: false }, (err, addr, fam) => {
      if (err) return fail(err);
      const text = Array.isArray(addr) ? addr[0]?.address : addr;
      try {
        const h = address(text, `lookup(${plan.name}) result`);
        if (fam !== undefined && fam !== 0 && fam !== h.family) throw invalid('ERR_NETNS_FAMILY_MISMATCH', `lookup(${plan.name}) returned ${text} as family ${fam}`);
        if (wanted !== 0 && h.family !== wanted) throw invalid('ERR_NETNS_FAMILY_MISMATCH', `lookup(${plan.name}) returned ${text}, expected IPv${wanted}`);
        ok(h);
      } catch (e) {
        fail(e);
      }
    });
  });
}

/**
 * Waits on this thread's event loop for a connecting descriptor, with an optional deadline and
 * signal. Rejects with the connect's errno (ECONNREFUSED, EHOSTUNREACH, ...), ETIMEDOUT or
 * ERR_NETNS_ABORTED; the caller closes the descriptor on rejection.
 */
function waitConnected(fd: number, deadline: number | undefined, signal: AbortSignal | undefined, dest: string, target: SocketTarget, stack: string | undefined): Promise<void> {
  return new Promise((ok, fail) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const id = native.socketWaitConnect(fd, (errno, message) => {
      cleanup();
      if (errno === 0) ok();
      else fail(fromNative({ errno, syscall: 'connect', message, detail: dest }, { netns: target.label }, stack));
    });
    const giveUp = (e: Error) => {
      if (!native.socketCancelWait(id)) return; // the result came first
      cleanup();
      fail(e);
    };
    function onAbort(): void {
      giveUp(aborted(signal!, `connect to ${dest}`));
    }
    if (deadline !== undefined) {
      timer = setTimeout(() => {
        const e = fromNative({ errno: -110, syscall: 'connect', message: 'connection timed out', detail: dest }, { netns: target.label }, stack);
        giveUp(e);
      }, Math.max(0, deadline - Date.now()));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function callerStack(skip: (...args: never[]) => unknown): string | undefined {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, skip);
  return holder.stack?.split('\n').slice(1).join('\n');
}

/**
 * A TCP connection made inside `target`, as a connected `net.Socket`.
 * Equivalent to: `ip netns exec NS nc HOST PORT`
 */
export async function connect(target: SocketTarget, options: ConnectOptions): Promise<net.Socket> {
  const stack = callerStack(connect);
  const plan = planConnect(options);
  const started = Date.now();
  const deadline = plan.timeout === undefined ? undefined : started + plan.timeout;
  const { signal } = plan;
  if (signal?.aborted) throw aborted(signal, `connect to ${options.host}:${plan.port}`);
  const host = plan.host ?? (await resolve(plan as ConnectPlan & { name: string }));
  if (plan.local && plan.local.family !== host.family) throw invalid('ERR_NETNS_FAMILY_MISMATCH', `localAddress is IPv${plan.local.family}, ${options.host} is IPv${host.family}`);
  const dest = hostPort(host, plan.port);
  if (signal?.aborted) throw aborted(signal, `connect to ${dest}`);
  const spec: NativeSocketSpec = { family: host.family, type: 'tcp', connect: endpoint(host, plan.port) };
  if (plan.local || plan.localPort !== undefined) spec.bind = endpoint(plan.local, plan.localPort ?? 0);
  const opened = await call({ netns: target.label, syscall: 'connect' }, () => native.socketOpen(target.ref, spec)).catch(pointAt(stack));
  const { fd } = opened;
  try {
    // The worker cannot be interrupted; an abort that came meanwhile is honoured here.
    if (signal?.aborted) throw aborted(signal, `connect to ${dest}`);
    if (opened.connecting) await waitConnected(fd, deadline, signal, dest, target, stack);
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
  return new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: plan.allowHalfOpen });
}

const LISTEN_KEYS = ['host', 'port', 'backlog', 'ipv6Only', 'reuseAddr'] as const;

/**
 * Makes `server` (a net.Server, http.Server, https.Server, tls.Server) accept connections inside
 * `target`; resolves with the address it listens on.
 * Equivalent to: `ip netns exec NS nc -l HOST PORT`
 */
export async function listen(target: SocketTarget, server: net.Server, options: ListenOptions): Promise<AddressInfo> {
  const stack = callerStack(listen);
  if (!(server instanceof net.Server)) throw invalid('ERR_NETNS_INVALID_ARG', `listen needs a net.Server (or http/https/tls.Server), got ${describe(server)}`);
  if (server.listening) throw invalid('ERR_NETNS_INVALID_ARG', 'the server is listening already');
  const o = validate.object(options, 'listen options');
  validate.knownKeys(o, 'listen options', LISTEN_KEYS);
  const host = o.host === undefined ? undefined : address(o.host, 'host');
  const p = port(o.port, 'port', 0);
  const backlog = o.backlog === undefined ? undefined : validate.integer(o.backlog, 'backlog', 1, 65535);
  const ipv6Only = o.ipv6Only === undefined ? undefined : validate.bool(o.ipv6Only, 'ipv6Only');
  if (ipv6Only !== undefined && host?.family === 4) throw invalid('ERR_NETNS_INVALID_ARG', 'ipv6Only applies to IPv6 hosts only');
  const reuseAddr = o.reuseAddr === undefined ? true : validate.bool(o.reuseAddr, 'reuseAddr');
  const spec: NativeSocketSpec = { family: host?.family ?? 6, type: 'tcp', reuseAddr, bind: endpoint(host, p) };
  if (host === undefined) {
    spec.fallbackV4 = true;
    spec.ipv6Only = ipv6Only ?? false;
  } else if (host.family === 6 && ipv6Only !== undefined) {
    spec.ipv6Only = ipv6Only;
  }
  const where = host ? hostPort(host, p) : `*:${p}`;
  const { fd } = await call({ netns: target.label, syscall: 'listen' }, () => native.socketOpen(target.ref, spec)).catch(pointAt(stack));
  // From here Node owns the descriptor: listen(2) on it, then accept in this process's loop. If
  // listen(2) fails Node closes the handle (and with it the descriptor) before emitting 'error'.
  await new Promise<void>((ok, fail) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      fail(new NetnsError((e.code ?? 'EIO') as NetnsErrorCode, `${e.code ?? 'EIO'}: ${e.message}, listen ${where} (netns ${target.label})`, { errno: e.errno, syscall: 'listen', netns: target.label }));
    };
    const onListening = () => {
      server.off('error', onError);
      ok();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      // exclusive: in a cluster worker the primary must not be asked to share a descriptor it does not have.
      server.listen({ fd, backlog, exclusive: true });
    } catch (e) {
      // Refused before Node took the descriptor (e.g. listen() was called elsewhere meanwhile).
      server.off('error', onError);
      server.off('listening', onListening);
      closeQuietly(fd);
      fail(e);
    }
  });
  return server.address() as AddressInfo;
}

const DGRAM_KEYS = ['type', 'address', 'port', 'reuseAddr', 'ipv6Only', 'lookup'] as const;

/**
 * A UDP socket bound inside `target`, as a `dgram.Socket` (already bound: do not call bind()).
 * Equivalent to: `ip netns exec NS nc -u -l ADDRESS PORT`
 */
export async function createDgram(target: SocketTarget, options: DgramOptions): Promise<dgram.Socket> {
  const stack = callerStack(createDgram);
  const o = validate.object(options, 'dgram options');
  validate.knownKeys(o, 'dgram options', DGRAM_KEYS);
  const type = validate.oneOf(o.type, 'type', ['udp4', 'udp6'] as const);
  const family: Family = type === 'udp6' ? 6 : 4;
  const host = o.address === undefined ? undefined : address(o.address, 'address', family);
  const p = o.port === undefined ? 0 : port(o.port, 'port', 0);
  const reuseAddr = o.reuseAddr === undefined ? false : validate.bool(o.reuseAddr, 'reuseAddr');
  const ipv6Only = o.ipv6Only === undefined ? undefined : validate.bool(o.ipv6Only, 'ipv6Only');
  if (ipv6Only !== undefined && family === 4) throw invalid('ERR_NETNS_INVALID_ARG', 'ipv6Only applies to udp6 sockets only');
  if (o.lookup !== undefined && typeof o.lookup !== 'function') throw invalid('ERR_NETNS_INVALID_ARG', `lookup must be a function, got ${describe(o.lookup)}`);
  const spec: NativeSocketSpec = { family, type: 'udp', reuseAddr, bind: endpoint(host, p) };
  if (ipv6Only !== undefined) spec.ipv6Only = ipv6Only;
  const { fd } = await call({ netns: target.label, syscall: 'bind' }, () => native.socketOpen(target.ref, spec)).catch(pointAt(stack));
  let sock: dgram.Socket | undefined;
  try {
    sock = dgram.createSocket(o.lookup ? { type, lookup: o.lookup as dgram.SocketOptions['lookup'] } : { type });
    // bind({ fd }) only opens the descriptor (no bind(2) again) and emits 'listening' at once.
    const s = sock;
    await new Promise<void>((ok) => s.bind({ fd, exclusive: true }, ok));
    return s;
  } catch (e) {
    // Node refused the descriptor (it throws before taking it): it is still ours to close.
    sock?.close();
    closeQuietly(fd);
    throw e;
  }
}

const RAW_KEYS = ['type', 'family', 'protocol'] as const;

/**
 * A bare descriptor created inside `target`, non-blocking and close-on-exec, owned by the caller
 * (close it with fs.closeSync, or hand it to something that will).
 * Equivalent to: `ip netns exec NS` followed by the program's own socket(2)
 */
export async function rawSocket(target: SocketTarget, options: RawSocketOptions): Promise<number> {
  const stack = callerStack(rawSocket);
  const o = validate.object(options, 'socket options');
  validate.knownKeys(o, 'socket options', RAW_KEYS);
  const type = validate.oneOf(o.type, 'type', ['tcp', 'udp', 'raw'] as const);
  const family = familyArg(o.family);
  let protocol = o.protocol === undefined ? undefined : validate.integer(o.protocol, 'protocol', 0, 255);
  if (type === 'raw' && (protocol === undefined || protocol === 0)) protocol = family === 6 ? 58 : 1;
  const spec: NativeSocketSpec = { family, type };
  if (protocol !== undefined) spec.protocol = protocol;
  const { fd } = await call({ netns: target.label, syscall: 'socket' }, () => native.socketOpen(target.ref, spec)).catch(pointAt(stack));
  return fd;
}

/** `ns.net`: TCP inside the namespace, with Node's own net classes. */
export class NetnsNet {
  constructor(private readonly target: SocketTarget) {}

  /** A connected `net.Socket` whose connection starts inside the namespace. Equivalent to: `ip netns exec NS nc HOST PORT` */
  connect(options: ConnectOptions): Promise<net.Socket> {
    return connect(this.target, options);
  }

  /** `server` accepts inside the namespace. Equivalent to: `ip netns exec NS nc -l HOST PORT` */
  listen(server: net.Server, options: ListenOptions): Promise<AddressInfo> {
    return listen(this.target, server, options);
  }
}

/** `ns.dgram`: UDP inside the namespace, with Node's own dgram.Socket. */
export class NetnsDgram {
  constructor(private readonly target: SocketTarget) {}

  /** A `dgram.Socket` bound inside the namespace. Equivalent to: `ip netns exec NS nc -u -l ADDRESS PORT` */
  createSocket(options: DgramOptions): Promise<dgram.Socket> {
    return createDgram(this.target, options);
  }
}
