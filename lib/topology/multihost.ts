/**
 * Multi-host topologies: several hosts (machines) joined by an underlay network, with a VXLAN
 * overlay between them that stretches one bridge (one layer-2 segment) over all hosts, the way a
 * static flannel-style overlay does: on each host a vxlan device (no learning) enslaved to the
 * overlay bridge, and a flood list (the all-zeros MAC appended once per other host) filled in.
 *
 * One file serves two purposes:
 * - simulated: `up(t)` makes every host a namespace, joins them with an underlay (a namespace
 *   `NAME-underlay` with bridge `ulbr`, one veth per host), and sets everything up on one machine;
 * - real: on each machine, `up(t, { host: 'host1' })` applies that host's part only. The host's
 *   own network namespace must be reachable under /run/netns by the host's name (on a real machine:
 *   `ip netns attach host1 1` names the machine's own namespace) and already have its underlay
 *   address on `underlayDevice`; it is used as an `existing` namespace (never created or deleted).
 *
 * Both expand to an ordinary topology (schema.ts) brought up by apply.ts, plus the overlay step
 * here (vxlan device and flood entries), which the ordinary schema has no words for.
 */
import { invalid } from '../errors';
import { parseCidr } from '../ip';
import * as validate from '../validate';
import { down, up, type DownOptions, type DownResult, type TopologyHandle, type UpOptions } from './apply';
import { nsObject } from './plan';
import type { NamespaceSpec, Topology } from './schema';
import { validate as validateTopology } from './validate';

export interface MultiHostTopology {
  /** as Topology.name; host mode records the part of host H as topology `NAME-H` */
  name: string;
  hosts: HostSpec[];
  overlay: OverlaySpec;
  /** the host's underlay device (default 'underlay'): a veth into the simulated underlay, or the real NIC */
  underlayDevice?: string;
}

export interface HostSpec {
  /** the host's name: its namespace when simulated, its /run/netns name on a real machine */
  name: string;
  /** the host's underlay address with prefix ("192.0.2.1/24"): the VXLAN tunnel's local end */
  underlay: string;
  /** namespaces living on this host (containers); their links may have their peer in the host (`peer.netns: HOST`) */
  namespaces?: NamespaceSpec[];
}

export interface OverlaySpec {
  /** VXLAN network identifier */
  id: number;
  /** UDP port (default 4789, IANA's) */
  port?: number;
  /** the bridge each host gets (the overlay segment); containers' veth peers join it */
  bridge: string;
  /** vxlan device name on each host (default `vx{id}`) */
  device?: string;
  /** addresses of the overlay bridge, per host name (e.g. a gateway on one host) */
  bridgeAddresses?: Record<string, string[]>;
}

interface Resolved {
  t: MultiHostTopology;
  port: number;
  device: string;
  underlayDevice: string;
  /** host name -> underlay address (no prefix) */
  underlay: Map<string, string>;
}

function fail(path: string, message: string): never {
  throw invalid('ERR_NETNS_INVALID_TOPOLOGY', `${path}: ${message}`);
}

/** Checks a multi-host topology (the overlay part; the namespaces are checked by the ordinary validator on expansion). */
export function validateMultiHost(input: unknown): MultiHostTopology {
  return resolve(input).t;
}

function resolve(input: unknown): Resolved {
  let o: Record<string, unknown>;
  try {
    o = validate.object(input, 'multi-host topology');
    validate.knownKeys(o, 'multi-host topology', ['name', 'hosts', 'overlay', 'underlayDevice']);
  } catch (e) {
    fail('(top)', (e as Error).message);
  }
  if (typeof o.name !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(o.name)) fail('name', 'must be 1-32 characters of A-Z a-z 0-9 _ -');
  if (!Array.isArray(o.hosts) || o.hosts.length < 2) fail('hosts', 'a multi-host topology needs at least two hosts');
  const ov = o.overlay as Record<string, unknown> | undefined;
  if (typeof ov !== 'object' || ov === null || Array.isArray(ov)) fail('overlay', 'must be an object { id, bridge, port?, device? }');
  const at = <T>(path: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      fail(path, (e as Error).message);
    }
  };
  at('overlay', () => validate.knownKeys(ov, 'overlay', ['id', 'port', 'bridge', 'device', 'bridgeAddresses']));
  const id = at('overlay.id', () => validate.integer(ov.id, 'vxlan id', 0, 2 ** 24 - 1));
  const port = ov.port === undefined ? 4789 : at('overlay.port', () => validate.integer(ov.port, 'vxlan port', 1, 65535, 'ERR_NETNS_INVALID_PORT'));
  at('overlay.bridge', () => validate.ifname(ov.bridge, 'overlay bridge'));
  const device = ov.device === undefined ? `vx${id}` : at('overlay.device', () => validate.ifname(ov.device, 'overlay device'));
  const underlayDevice = o.underlayDevice === undefined ? 'underlay' : at('underlayDevice', () => validate.ifname(o.underlayDevice, 'underlay device'));
  const underlay = new Map<string, string>();
  let family: 4 | 6 | undefined;
  (o.hosts as unknown[]).forEach((h, i) => {
    const path = `hosts[${i}]`;
    const ho = at(path, () => validate.object(h, 'host'));
    at(path, () => validate.knownKeys(ho, 'host', ['name', 'underlay', 'namespaces']));
    const name = at(`${path}.name`, () => validate.netnsName(ho.name));
    if (underlay.has(name)) fail(`${path}.name`, `host "${name}" is declared twice`);
    const c = at(`${path}.underlay`, () => parseCidr(ho.underlay, 'underlay address', { family }));
    family = c.family;
    if ([...underlay.values()].includes(c.address)) fail(`${path}.underlay`, `address ${c.address} is also another host's`);
    underlay.set(name, c.address);
    if (ho.namespaces !== undefined && !Array.isArray(ho.namespaces)) fail(`${path}.namespaces`, 'must be an array');
  });
  if (ov.bridgeAddresses !== undefined) {
    const ba = at('overlay.bridgeAddresses', () => validate.object(ov.bridgeAddresses, 'bridgeAddresses'));
    for (const k of Object.keys(ba)) if (!underlay.has(k)) fail(`overlay.bridgeAddresses.${k}`, `no host "${k}"`);
  }
  return { t: input as MultiHostTopology, port, device, underlayDevice, underlay };
}

function underlayNamespace(t: MultiHostTopology): string {
  return `${t.name}-underlay`;
}

/** The name the part of `host` is recorded under (host mode). */
export function hostTopologyName(t: MultiHostTopology, host: string): string {
  return `${t.name}-${host}`;
}

/**
 * The ordinary topology a multi-host one stands for: all hosts simulated (no `host`), or the part
 * of one host, whose own namespace is `existing`. Validated (errors name paths in the expansion).
 */
export function expand(input: MultiHostTopology, options: { host?: string } = {}): Topology {
  const r = resolve(input);
  const t = r.t;
  const hostNs = (h: HostSpec, existing: boolean): NamespaceSpec => {
    const ns: NamespaceSpec = { name: h.name, bridges: [{ name: t.overlay.bridge, addresses: t.overlay.bridgeAddresses?.[h.name] ?? [] }] };
    if (existing) ns.existing = true;
    return ns;
  };
  let out: Topology;
  if (options.host === undefined) {
    const ul = underlayNamespace(t);
    const namespaces: NamespaceSpec[] = [{ name: ul, bridges: [{ name: 'ulbr' }] }];
    t.hosts.forEach((h, i) => {
      const ns = hostNs(h, false);
      ns.links = [{ name: r.underlayDevice, addresses: [h.underlay], peer: { netns: ul, name: `ul${i}`, master: 'ulbr' } }];
      namespaces.push(ns, ...(h.namespaces ?? []));
    });
    out = { name: t.name, namespaces };
  } else {
    const h = t.hosts.find((x) => x.name === options.host);
    if (!h) throw invalid('ERR_NETNS_INVALID_ARG', `no host "${String(options.host)}" in topology ${t.name} (hosts: ${t.hosts.map((x) => x.name).join(', ')})`);
    out = { name: hostTopologyName(t, h.name), namespaces: [hostNs(h, true), ...(h.namespaces ?? [])] };
  }
  return validateTopology(out);
}

/** The vxlan device and flood list on one host; what exists already is left alone. */
async function overlayUp(r: Resolved, host: string): Promise<string[]> {
  const ns = nsObject(host);
  const changes: string[] = [];
  const existing = (await ns.links.list()).find((l) => l.name === r.device);
  if (existing && existing.kind !== 'vxlan') {
    throw invalid('ERR_NETNS_CONFLICT', `interface ${r.device} in ${host} is a ${existing.kind}, not the overlay's vxlan device`);
  }
  if (!existing) {
    await ns.links.add({
      kind: 'vxlan',
      name: r.device,
      id: r.t.overlay.id,
      local: r.underlay.get(host)!,
      port: r.port,
      parent: r.underlayDevice,
      learning: false,
      master: r.t.overlay.bridge,
      up: true,
    });
    changes.push(`add vxlan ${r.device} id ${r.t.overlay.id} master ${r.t.overlay.bridge} (${host})`);
  }
  const flood = new Set((await ns.fdb.list({ dev: r.device })).filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst));
  for (const [other, address] of r.underlay) {
    if (other === host || flood.has(address)) continue;
    await ns.fdb.add({ dev: r.device, mac: '00:00:00:00:00:00', dst: address, append: true });
    changes.push(`append flood entry ${address} to ${r.device} (${host})`);
  }
  return changes;
}

/**
 * Brings a multi-host topology up: all hosts simulated on this machine, or (with `host`) that
 * host's part on this machine. The overlay (vxlan device, flood list) follows the ordinary parts;
 * if it fails, what this call created is removed again.
 * CLI: `netns-kit up FILE` / `netns-kit up FILE --host NAME`.
 */
export async function upMultiHost(input: MultiHostTopology, options: UpOptions & { host?: string } = {}): Promise<TopologyHandle> {
  const r = resolve(input);
  const { host, ...upOptions } = options;
  const expanded = expand(input, { host });
  const handle = await up(expanded, upOptions);
  try {
    const hosts = host === undefined ? r.t.hosts.map((h) => h.name) : [host];
    for (const h of hosts) handle.changes.push(...(await overlayUp(r, h)));
  } catch (e) {
    if (handle.changes.length > 0) await downMultiHost(input, { host }).catch(() => undefined);
    throw e;
  }
  return handle;
}

/**
 * Removes what `upMultiHost` made (all hosts, or one host's part: its vxlan device and overlay
 * bridge go, its own namespace stays). CLI: `netns-kit down FILE [--host NAME]`.
 */
export async function downMultiHost(input: MultiHostTopology, options: DownOptions & { host?: string } = {}): Promise<DownResult> {
  const r = resolve(input);
  const { host, ...downOptions } = options;
  const expanded = expand(input, { host });
  // In host mode the host namespace is not the topology's: its vxlan device (made by the overlay
  // step, unknown to the ordinary topology) is removed here; the bridge goes with the topology.
  if (host !== undefined) await nsObject(host).links.delete(r.device, { missingOk: true });
  return down(expanded, downOptions);
}

/** True for a value shaped like a multi-host topology (it has `hosts`). */
export function isMultiHost(value: unknown): value is MultiHostTopology {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'hosts' in value;
}
