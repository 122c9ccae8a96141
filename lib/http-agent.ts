/**
 * HTTP(S) from inside a namespace: Node's `http.Agent` / `https.Agent` and undici's `Agent` (what
 * `fetch` runs on), each with the one hook that makes a connection replaced by `ns.net.connect`.
 * Everything else — keep-alive pools, TLS, sessions, redirects, bodies — is theirs, unchanged.
 *
 * See docs/sockets.md.
 */
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { Agent as UndiciAgent, Dispatcher, RequestInfo, RequestInit, Response } from 'undici';
import { invalid } from './errors';
import { describe } from './ip';
import { connect, type SocketTarget } from './sockets';
import * as validate from './validate';

/** undici is loaded by the first dispatcher or fetch, not with the library (it takes longer to load than all of netns-kit). */
function undici(): typeof import('undici') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('undici') as typeof import('undici');
}

/** What our agents add to Node's agent options. */
export interface NetnsAgentExtras {
  /** Resolves host names (dns.lookup's signature); default: hosts must be IP addresses. */
  lookup?: LookupFunction;
  /** Milliseconds for each TCP connection to be established (ETIMEDOUT). Default none. */
  connectTimeout?: number;
}

export interface NetnsHttpAgentOptions extends http.AgentOptions, NetnsAgentExtras {
  tls?: false;
}

export interface NetnsHttpsAgentOptions extends https.AgentOptions, NetnsAgentExtras {
  tls: true;
}

/** undici Agent options, plus TLS options for https: URLs and our own two. */
export interface NetnsDispatcherOptions extends Omit<UndiciAgent.Options, 'connect' | 'tls'>, NetnsAgentExtras {
  /** TLS options for https: origins (ca, cert, key, rejectUnauthorized, servername, ...). */
  tls?: ConnectionOptions;
}

type Callback = (err: Error | null, stream: Duplex) => void;

function extras(o: NetnsAgentExtras): NetnsAgentExtras {
  if (o.lookup !== undefined && typeof o.lookup !== 'function') throw invalid('ERR_NETNS_INVALID_ARG', `lookup must be a function, got ${describe(o.lookup)}`);
  if (o.connectTimeout !== undefined) validate.integer(o.connectTimeout, 'connectTimeout', 1, 2 ** 31 - 1);
  return { lookup: o.lookup, connectTimeout: o.connectTimeout };
}

/** Node's options for its own global agent (Node 20): keep-alive, most recently used socket first, 5 s socket timeout. */
const AGENT_DEFAULTS = { keepAlive: true, scheduling: 'lifo', timeout: 5000 } as const;

function agentOptions<T extends NetnsAgentExtras & { tls?: boolean }>(options: T): Omit<T, 'tls' | 'lookup' | 'connectTimeout'> {
  const { tls: _tls, lookup: _lookup, connectTimeout: _ct, ...rest } = options;
  return { ...AGENT_DEFAULTS, ...rest };
}

/** Connects inside the namespace with what an http.Agent passes to createConnection. */
function connectFor(target: SocketTarget, ex: NetnsAgentExtras, options: http.ClientRequestArgs, defaultPort: number): Promise<Socket> {
  const family = options.family === 4 || options.family === 6 ? options.family : undefined;
  return connect(target, {
    host: options.host ?? options.hostname ?? 'localhost',
    port: Number(options.port) || defaultPort,
    localAddress: options.localAddress,
    family,
    lookup: (options.lookup as LookupFunction | undefined) ?? ex.lookup,
    timeout: ex.connectTimeout,
  });
}

/**
 * An `http.Agent` whose connections start inside a namespace (keep-alive by default, like Node's
 * global agent). Equivalent to: `ip netns exec NS curl ...`
 */
export class NetnsHttpAgent extends http.Agent {
  private readonly extras: NetnsAgentExtras;
  constructor(
    private readonly target: SocketTarget,
    options: NetnsHttpAgentOptions = {},
  ) {
    const ex = extras(validate.object(options, 'agent options') as NetnsAgentExtras);
    super(agentOptions(options));
    this.extras = ex;
  }

  override createConnection(options: http.ClientRequestArgs, callback?: Callback): Duplex | null | undefined {
    // Returning nothing tells http.Agent to wait for the callback (the socket comes later).
    connectFor(this.target, this.extras, options, 80).then(
      (s) => callback?.(null, s),
      (e: Error) => callback?.(e, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

type HttpsCreate = (this: https.Agent, options: https.RequestOptions & { socket: Socket }) => Duplex;

/**
 * An `https.Agent` whose TCP connections start inside a namespace; TLS (and session reuse) is
 * Node's, over that connection. Equivalent to: `ip netns exec NS curl https://...`
 */
export class NetnsHttpsAgent extends https.Agent {
  private readonly extras: NetnsAgentExtras;
  constructor(
    private readonly target: SocketTarget,
    options: Omit<NetnsHttpsAgentOptions, 'tls'> & { tls?: true } = {},
  ) {
    const ex = extras(validate.object(options, 'agent options') as NetnsAgentExtras);
    super(agentOptions(options));
    this.extras = ex;
  }

  override createConnection(options: https.RequestOptions, callback?: Callback): Duplex | null | undefined {
    connectFor(this.target, this.extras, options, 443).then(
      (socket) => {
        let tlsSocket: Duplex;
        try {
          // https.Agent's own createConnection: tls.connect over our socket, with its session cache.
          tlsSocket = (https.Agent.prototype.createConnection as unknown as HttpsCreate).call(this, { ...options, socket });
        } catch (e) {
          socket.destroy();
          callback?.(e as Error, undefined as unknown as Duplex);
          return;
        }
        callback?.(null, tlsSocket);
      },
      (e: Error) => callback?.(e, undefined as unknown as Duplex),
    );
    return undefined;
  }
}

const AGENT_KEYS_OK = (o: Record<string, unknown>): void => {
  if (o.tls !== undefined && typeof o.tls !== 'boolean') throw invalid('ERR_NETNS_INVALID_ARG', `tls must be true or false, got ${describe(o.tls)}`);
};

/** `ns.agent(options)`: http.Agent, or https.Agent with `tls: true`. */
export function createAgent(target: SocketTarget, options: NetnsHttpAgentOptions | NetnsHttpsAgentOptions = {}): NetnsHttpAgent | NetnsHttpsAgent {
  const o = validate.object(options, 'agent options');
  AGENT_KEYS_OK(o);
  return o.tls === true ? new NetnsHttpsAgent(target, options as NetnsHttpsAgentOptions) : new NetnsHttpAgent(target, options as NetnsHttpAgentOptions);
}

/**
 * An undici `Agent` (a fetch dispatcher) whose connections start inside a namespace; https:
 * origins get TLS through undici's own connector over that connection.
 */
export function createDispatcher(target: SocketTarget, options: NetnsDispatcherOptions = {}): UndiciAgent {
  const o = validate.object(options, 'dispatcher options');
  if (o.connect !== undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'dispatcher options may not set connect: the namespace makes the connections');
  if (o.tls !== undefined) validate.object(o.tls, 'tls');
  const ex = extras(o as NetnsAgentExtras);
  const { tls, lookup: _l, connectTimeout: _c, ...agentOpts } = options;
  const { Agent, buildConnector } = undici();
  const tlsConnect = buildConnector(ex.connectTimeout === undefined ? { ...tls } : { ...tls, timeout: ex.connectTimeout });
  return new Agent({
    ...agentOpts,
    connect: (opts, callback) => {
      const https = opts.protocol === 'https:';
      connect(target, {
        host: opts.hostname,
        port: Number(opts.port) || (https ? 443 : 80),
        localAddress: opts.localAddress ?? undefined,
        lookup: ex.lookup,
        timeout: ex.connectTimeout,
      }).then(
        (socket) => {
          if (https) {
            tlsConnect({ ...opts, httpSocket: socket }, callback);
            return;
          }
          // What undici's own connector does to its sockets.
          socket.setNoDelay(true).setKeepAlive(true, 60_000);
          callback(null, socket);
        },
        (e: Error) => callback(e, null),
      );
    },
  });
}

/** fetch() through `dispatcher`: undici's fetch, the same implementation as Node's global one. */
export async function fetchWith(dispatcher: Dispatcher, input: RequestInfo, init: RequestInit = {}): Promise<Response> {
  if (init === null || typeof init !== 'object') throw invalid('ERR_NETNS_INVALID_ARG', `fetch init must be an object, got ${describe(init)}`);
  if ((init as { dispatcher?: unknown }).dispatcher !== undefined) {
    throw invalid('ERR_NETNS_INVALID_ARG', 'fetch init may not set dispatcher: ns.fetch uses the namespace\'s (use ns.dispatcher() and undici\'s fetch for your own)');
  }
  return undici().fetch(input, { ...init, dispatcher });
}

/** The agents and dispatcher a namespace handle hands out by default, so keep-alive pools are shared. */
export class DefaultPools {
  http?: NetnsHttpAgent;
  https?: NetnsHttpsAgent;
  dispatcher?: UndiciAgent;

  /** Closes idle connections and forgets the pools (the next call makes new ones). */
  async close(): Promise<void> {
    this.http?.destroy();
    this.https?.destroy();
    const d = this.dispatcher;
    this.http = this.https = this.dispatcher = undefined;
    await d?.close();
  }
}
