/**
 * Links in one namespace: veth pairs (peer created directly in its namespace), bridges, dummy,
 * macvlan and vxlan devices; bring up/down, MTU, MAC, rename, master, move; list and delete.
 */
import { randomBytes } from 'node:crypto';
import { call, invalid, isNotFound } from './errors';
import { native, type NativeLink, type NativeLinkAdd, type NativeLinkChange, type NativeLinkSpec, type NativeLinkStats } from './native';
import { parseAddress } from './ip';
import * as validate from './validate';
import type { Netns } from './netns';
import { namespaceNames, RUN_DIR } from './run-dir';
import { getShape as getLinkShape, shape as shapeLink } from './tc';
import type { LinkShape, LinkShapeSpec } from './shape';

export type LinkKind = 'veth' | 'bridge' | 'dummy' | 'macvlan' | 'vxlan';

interface CommonLinkOptions {
  name: string;
  /** IFF_UP at creation */
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** interface index to ask for (the kernel picks one when omitted) */
  index?: number;
  /** interface group (for batch teardown: `ip link del group N`) */
  group?: number;
  txqlen?: number;
  /** bridge (in the same namespace) to enslave the link to, set in the creating message */
  master?: string;
}

export interface VethPeerOptions {
  name: string;
  /** namespace of the peer; the peer is created there directly (default: this namespace) */
  netns?: Netns;
  /** brought up from inside its namespace right after creation */
  up?: boolean;
  mtu?: number;
  mac?: string;
  index?: number;
  group?: number;
}

export type AddLinkOptions =
  | (CommonLinkOptions & { kind: 'veth'; peer: VethPeerOptions })
  | (CommonLinkOptions & { kind: 'bridge' })
  | (CommonLinkOptions & { kind: 'dummy' })
  | (CommonLinkOptions & { kind: 'macvlan'; parent: string; mode?: 'private' | 'vepa' | 'bridge' | 'passthru' | 'source' })
  | (CommonLinkOptions & {
      kind: 'vxlan';
      /** VXLAN network identifier (0-16777215) */
      id: number;
      /** unicast remote, or `group` for multicast */
      remote?: string;
      group?: string;
      local?: string;
      /** UDP destination port (the kernel defaults to 8472; IANA's is 4789) */
      port?: number;
      /** underlay device (`dev PARENT`) */
      parent?: string;
      /** learn remote MACs from received packets (default on); false is `nolearning` (static FDB overlays) */
      learning?: boolean;
      ttl?: number;
      /** netlink notifications for FDB / neighbour misses (`l2miss`, `l3miss`), for an agent that fills them in */
      l2miss?: boolean;
      l3miss?: boolean;
      /** UDP source port range [low, high] (`srcport LOW HIGH`) */
      srcPortRange?: [number, number];
    });

export interface LinkChanges {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** rename (the link must be down) */
  name?: string;
  /** bridge to enslave to; null detaches (`nomaster`) */
  master?: string | null;
  /** move the link to another namespace */
  netns?: Netns;
  group?: number;
  txqlen?: number;
  /**
   * As a bridge port: send frames back out of the port they came in on (needed when a namespace
   * reaches its own service through the host's address, i.e. NAT hairpin on the same port).
   */
  hairpin?: boolean;
  /**
   * As a bridge port: isolated ports forward only to ports that are not isolated (the uplink, the
   * bridge itself), never to each other. Equivalent to: `ip link set NAME type bridge_slave isolated on`
   */
  isolated?: boolean;
  /** receive every frame, not only those addressed to the link (`ip link set NAME promisc on|off`) */
  promisc?: boolean;
}

export interface Link {
  index: number;
  name: string;
  /** veth, bridge, macvlan, vxlan, ... ; 'loopback' for lo; 'device' for hardware without a kind */
  kind: string;
  mac: string;
  mtu: number;
  /** administratively up (IFF_UP) */
  up: boolean;
  /** RFC 2863 state: up, down, lowerlayerdown, unknown, ... */
  operstate: string;
  /** name of the bridge this link is enslaved to */
  master?: string;
  masterIndex?: number;
  /** veth peer (or lower device): its index, and its namespace when it is not this one */
  peer?: { index: number; netns?: string; netnsId?: number };
  group: number;
  /** raw IFF_* flags */
  flags: number;
  /** counters, when listed with `{ stats: true }` */
  stats?: LinkStats;
}

/**
 * A link's IFLA_STATS64 counters, as `ip -s link` prints them: rx/tx bytes, packets, errors and
 * drops, multicast and collisions. The addon hands them over unchanged, so this is its type.
 */
export type LinkStats = NativeLinkStats;

/**
 * A random unicast, locally administered MAC address (02:xx:..., the way the CNI reference plugins
 * and systemd-networkd make one). Given to a bridge in its creating message it stays fixed: a
 * bridge whose MAC the kernel chose takes its lowest port's MAC, so its address (a gateway's, for
 * the namespaces behind it) changes as ports come and go and neighbours keep a stale entry.
 */
export function randomLocalMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const KINDS: readonly LinkKind[] = ['veth', 'bridge', 'dummy', 'macvlan', 'vxlan'];
const COMMON = ['kind', 'name', 'up', 'mtu', 'mac', 'index', 'group', 'txqlen', 'master'];
const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;

function specOf(o: Record<string, unknown>, what: string): NativeLinkSpec {
  const spec: NativeLinkSpec = { name: validate.ifname(o.name, `${what} name`) };
  if (o.up !== undefined) spec.up = validate.bool(o.up, `${what} up`);
  if (o.mtu !== undefined) spec.mtu = validate.mtu(o.mtu);
  if (o.mac !== undefined) spec.mac = validate.mac(o.mac);
  if (o.index !== undefined) spec.index = validate.integer(o.index, `${what} index`, 1, 2 ** 31 - 1);
  if (o.group !== undefined) spec.group = validate.integer(o.group, `${what} group`, 0, 2 ** 32 - 1);
  if (o.txqlen !== undefined) spec.txqlen = validate.integer(o.txqlen, `${what} txqlen`, 0, 2 ** 32 - 1);
  return spec;
}

/** Validates add() options into the addon's plain shape. Exported for the topology planner. */
export function toNativeAdd(options: AddLinkOptions): NativeLinkAdd {
  const o = validate.object(options, 'link options');
  const kind = validate.oneOf(o.kind, 'link kind', KINDS);
  const spec: NativeLinkAdd = { kind, ...specOf(o, 'link') };
  if (o.master !== undefined) spec.master = validate.ifname(o.master, 'master');
  switch (kind) {
    case 'veth': {
      validate.knownKeys(o, 'veth options', [...COMMON, 'peer']);
      const p = validate.object(o.peer, 'veth peer');
      validate.knownKeys(p, 'veth peer', ['name', 'netns', 'up', 'mtu', 'mac', 'index', 'group']);
      spec.peer = specOf(p, 'peer');
      const peerNs = p.netns as Netns | undefined;
      if (peerNs !== undefined) {
        if (typeof peerNs !== 'object' || peerNs === null || typeof peerNs.path !== 'string') {
          throw invalid('ERR_NETNS_INVALID_ARG', 'veth peer netns must be a Netns object');
        }
        // bound handles carry their namespace's identity: ESTALE rather than the wrong peer namespace
        spec.peer.netns = peerNs.ref ?? peerNs.path;
      }
      break;
    }
    case 'macvlan':
      validate.knownKeys(o, 'macvlan options', [...COMMON, 'parent', 'mode']);
      spec.parent = validate.ifname(o.parent, 'macvlan parent');
      if (o.mode !== undefined) spec.mode = validate.oneOf(o.mode, 'macvlan mode', ['private', 'vepa', 'bridge', 'passthru', 'source']);
      break;
    case 'vxlan': {
      validate.knownKeys(o, 'vxlan options', [...COMMON, 'id', 'remote', 'group', 'local', 'port', 'parent', 'learning', 'ttl', 'l2miss', 'l3miss', 'srcPortRange']);
      const vx: NonNullable<NativeLinkAdd['vxlan']> = { id: validate.integer(o.id, 'vxlan id', 0, 2 ** 24 - 1) };
      if (o.remote !== undefined && o.group !== undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'vxlan takes remote or group, not both');
      const fam = o.local !== undefined ? parseAddress(o.local, 'vxlan local').family : undefined;
      if (o.remote !== undefined) vx.remote = parseAddress(o.remote, 'vxlan remote', fam).address;
      if (o.group !== undefined) vx.group = parseAddress(o.group, 'vxlan group', fam).address;
      if (o.local !== undefined) vx.local = parseAddress(o.local, 'vxlan local').address;
      if (o.port !== undefined) vx.port = validate.integer(o.port, 'vxlan port', 1, 65535, 'ERR_NETNS_INVALID_PORT');
      if (o.learning !== undefined) vx.learning = validate.bool(o.learning, 'vxlan learning');
      if (o.ttl !== undefined) vx.ttl = validate.integer(o.ttl, 'vxlan ttl', 0, 255);
      if (o.l2miss !== undefined) vx.l2miss = validate.bool(o.l2miss, 'vxlan l2miss');
      if (o.l3miss !== undefined) vx.l3miss = validate.bool(o.l3miss, 'vxlan l3miss');
      if (o.srcPortRange !== undefined) {
        const r = o.srcPortRange;
        if (!Array.isArray(r) || r.length !== 2) throw invalid('ERR_NETNS_INVALID_PORT', 'vxlan srcPortRange must be [low, high]');
        const low = validate.integer(r[0], 'vxlan srcPortRange low', 1, 65535, 'ERR_NETNS_INVALID_PORT');
        const high = validate.integer(r[1], 'vxlan srcPortRange high', 1, 65535, 'ERR_NETNS_INVALID_PORT');
        if (low > high) throw invalid('ERR_NETNS_INVALID_PORT', `vxlan srcPortRange ${low}-${high} is reversed`);
        vx.srcPortRange = [low, high];
      }
      if (o.parent !== undefined) spec.parent = validate.ifname(o.parent, 'vxlan parent');
      spec.vxlan = vx;
      break;
    }
    default:
      validate.knownKeys(o, `${kind} options`, COMMON);
  }
  return spec;
}

function toNativeChange(changes: LinkChanges): NativeLinkChange {
  const o = validate.object(changes, 'link changes');
  validate.knownKeys(o, 'link changes', ['up', 'mtu', 'mac', 'name', 'master', 'netns', 'group', 'txqlen', 'hairpin', 'isolated', 'promisc']);
  if (o.hairpin !== undefined) validate.bool(o.hairpin, 'hairpin');
  if (o.isolated !== undefined) validate.bool(o.isolated, 'isolated');
  if (o.promisc !== undefined) validate.bool(o.promisc, 'promisc');
  const c: NativeLinkChange = {};
  if (o.up !== undefined) c.up = validate.bool(o.up, 'up');
  if (o.mtu !== undefined) c.mtu = validate.mtu(o.mtu);
  if (o.mac !== undefined) c.mac = validate.mac(o.mac);
  if (o.name !== undefined) c.name = validate.ifname(o.name, 'new name');
  if (o.master === null) c.master = '';
  else if (o.master !== undefined) c.master = validate.ifname(o.master, 'master');
  if (o.netns !== undefined) {
    const ns = o.netns as Netns;
    if (typeof ns !== 'object' || ns === null || typeof ns.path !== 'string') throw invalid('ERR_NETNS_INVALID_ARG', 'netns must be a Netns object');
    c.netns = ns.ref ?? ns.path;
  }
  if (o.group !== undefined) c.group = validate.integer(o.group, 'group', 0, 2 ** 32 - 1);
  if (o.txqlen !== undefined) c.txqlen = validate.integer(o.txqlen, 'txqlen', 0, 2 ** 32 - 1);
  return c;
}

export class Links {
  constructor(private readonly ns: Netns) {}

  /**
   * Creates a link. Equivalent to:
   * `ip link add NAME type veth peer name PEER netns NS` / `ip link add NAME type bridge` /
   * `ip link add NAME link PARENT type macvlan mode MODE` /
   * `ip link add NAME type vxlan id ID [remote|group IP] [local IP] [dstport P] [dev PARENT] [nolearning] [l2miss] [l3miss] [ttl T] [srcport LOW HIGH]`,
   * with `master BR` and `up` in the same message. A veth whose peer cannot be set up is removed again.
   */
  async add(options: AddLinkOptions): Promise<void> {
    const spec = toNativeAdd(options);
    await call({ netns: this.ns.label, ifname: spec.name, syscall: 'add link' }, () => native.linkAdd(this.ns.ref, spec));
  }

  /**
   * Changes a link. Equivalent to: `ip link set NAME up|down mtu N address MAC name NEW master BR|nomaster netns NS`
   * (and `ip link set NAME type bridge_slave hairpin on|off isolated on|off` for `hairpin` / `isolated`,
   * `ip link set NAME promisc on|off` for `promisc`).
   */
  async set(name: string, changes: LinkChanges): Promise<void> {
    validate.ifname(name);
    const c = toNativeChange(changes);
    const ctx = { netns: this.ns.label, ifname: name, syscall: 'set link' };
    // The bridge-port setting comes first: it needs the port still in this namespace and enslaved.
    if (changes.hairpin !== undefined || changes.isolated !== undefined || changes.promisc !== undefined) {
      const port = {
        ...(changes.hairpin !== undefined ? { hairpin: changes.hairpin } : {}),
        ...(changes.isolated !== undefined ? { isolated: changes.isolated } : {}),
        ...(changes.promisc !== undefined ? { promisc: changes.promisc } : {}),
      };
      await call(ctx, () => native.bridgePortSet(this.ns.ref, name, port));
    }
    if (Object.keys(c).length > 0) await call(ctx, () => native.linkSet(this.ns.ref, name, c));
  }

  /** Deletes a link (a veth takes its peer with it). Equivalent to: `ip link del NAME` */
  async delete(name: string, options: { missingOk?: boolean } = {}): Promise<void> {
    validate.ifname(name);
    try {
      await call({ netns: this.ns.label, ifname: name, syscall: 'delete link' }, () => native.linkDelete(this.ns.ref, name));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /**
   * One link by name; ENOENT when there is none. Equivalent to: `ip -d link show dev NAME`
   * (`peerCandidates` as for list()).
   */
  async get(name: string, options: { peerCandidates?: readonly string[] } = {}): Promise<Link> {
    validate.ifname(name);
    validate.knownKeys(validate.object(options, 'get options'), 'get options', ['peerCandidates']);
    const ctx = { netns: this.ns.label, ifname: name, syscall: 'get link' };
    const [one] = await call(ctx, () => native.linkList(this.ns.ref, name));
    // The master's name needs one more look-up; a full dump is only done when there is a master.
    const all = one.master ? await call(ctx, () => native.linkList(this.ns.ref)) : [one];
    return (await this.toLinks([one], all, options.peerCandidates))[0];
  }

  /**
   * Every link of the namespace; `stats: true` adds the counters. Equivalent to: `ip -d link show`
   * (`ip -s -d link show`)
   *
   * A veth peer's namespace is named by asking the kernel about the entries of /run/netns (one
   * RTM_GETNSID each); `peerCandidates` narrows that to the names given, for callers that know
   * where the peers can be (a topology's status, which would otherwise ask N×N times).
   */
  async list(options: { stats?: boolean; peerCandidates?: readonly string[] } = {}): Promise<Link[]> {
    validate.knownKeys(validate.object(options, 'list options'), 'list options', ['stats', 'peerCandidates']);
    const stats = options.stats === undefined ? false : validate.bool(options.stats, 'stats');
    const raw = await call({ netns: this.ns.label, syscall: 'list links' }, () => native.linkList(this.ns.ref, undefined, stats));
    return this.toLinks(raw, raw, options.peerCandidates);
  }

  /** A link's counters (IFLA_STATS64). Equivalent to: `ip -s link show dev NAME` */
  async stats(name: string): Promise<LinkStats> {
    validate.ifname(name);
    const [one] = await call({ netns: this.ns.label, ifname: name, syscall: 'get link' }, () => native.linkList(this.ns.ref, name, true));
    return { ...one.stats! };
  }

  /**
   * Shapes a link: rate limit, queue, delay, jitter, loss, duplication, corruption, reordering, on
   * egress and (with `ingress`) on what the link receives. The object describes the link's whole
   * shape: what it leaves out is removed. `null` returns the link to the kernel's default.
   * Equivalent to:
   * - rate only: `tc qdisc replace dev DEV root handle 1: tbf rate R burst B latency L`
   * - impairments: `tc qdisc replace dev DEV root handle 2: netem delay D J loss P ...`
   *   (+ `tc qdisc replace dev DEV parent 2:1 handle 3: tbf rate R ...` with a rate)
   * - ingress: `ip link add nkifbIDX type ifb; tc qdisc add dev DEV ingress;
   *   tc filter replace dev DEV parent ffff: u32 match u32 0 0 action mirred egress redirect dev nkifbIDX`
   *   and the egress recipe on the ifb
   * - null: `tc qdisc del dev DEV root; tc qdisc del dev DEV ingress; ip link del nkifbIDX`
   *
   * Re-shaping is atomic (`replace`: the kernel changes or swaps the root qdisc in one step).
   * Bad input fails with ERR_NETNS_INVALID_ARG before anything changes; a kernel without netem
   * fails with EOPNOTSUPP and the link keeps its previous shape. See docs/tc.md.
   */
  async shape(name: string, spec: LinkShapeSpec | null): Promise<void> {
    await shapeLink(this.ns, name, spec);
  }

  /** What shape() applied, in plain units (bits/s, bytes, ms, percent); null for the kernel default. Equivalent to: `tc -s qdisc show dev DEV` */
  async getShape(name: string): Promise<LinkShape | null> {
    return getLinkShape(this.ns, name);
  }

  private async toLinks(raw: NativeLink[], all: NativeLink[], candidates?: readonly string[]): Promise<Link[]> {
    const byIndex = new Map(all.map((l) => [l.index, l.name]));
    const names = await peerNamespaceNames(this.ns.ref, raw, candidates);
    return raw.map((l) => toLink(l, byIndex, names));
  }
}

/**
 * The addon's link record as the typed Link, shared by list() and the event stream (lib/watch.ts).
 * `names`: ifindex -> name in the same namespace (for the master); `netnsNames`: nsid -> /run/netns name.
 */
export function toLink(l: NativeLink, names: ReadonlyMap<number, string>, netnsNames: ReadonlyMap<number, string>): Link {
  const link: Link = {
    index: l.index,
    name: l.name,
    kind: l.kind || (l.flags & IFF_LOOPBACK ? 'loopback' : 'device'),
    mac: l.mac,
    mtu: l.mtu,
    up: (l.flags & IFF_UP) !== 0,
    operstate: l.operstate,
    group: l.group,
    flags: l.flags,
  };
  if (l.stats) link.stats = { ...l.stats };
  if (l.master) {
    link.masterIndex = l.master;
    link.master = names.get(l.master);
  }
  // IFLA_LINK equals the own index for devices without a peer; a peer elsewhere may share the number.
  if (l.peerIndex && (l.peerIndex !== l.index || l.linkNetnsId >= 0)) {
    link.peer = { index: l.peerIndex };
    if (l.linkNetnsId >= 0) {
      link.peer.netnsId = l.linkNetnsId;
      link.peer.netns = netnsNames.get(l.linkNetnsId);
    }
  }
  return link;
}

/**
 * nsid -> /run/netns name (as `ip link` prints "link-netns NAME"), only when some link needs it.
 * `candidates` narrows the names asked about (one RTM_GETNSID each); default: all of /run/netns.
 */
export async function peerNamespaceNames(nsPath: string, raw: readonly NativeLink[], candidates?: readonly string[]): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (!raw.some((l) => l.linkNetnsId >= 0)) return out;
  const names = candidates ?? (await namespaceNames());
  const ids = await native.netnsIds(nsPath, names.map((n) => `${RUN_DIR}/${n}`)).catch(() => [] as number[]);
  ids.forEach((id, i) => {
    if (id >= 0 && !out.has(id)) out.set(id, names[i]);
  });
  return out;
}
