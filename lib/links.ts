/**
 * Links in one namespace: veth pairs (peer created directly in its namespace), bridges, dummy,
 * macvlan and vxlan devices; bring up/down, MTU, MAC, rename, master, move; list and delete.
 */
import { call, invalid, isNotFound } from './errors';
import { native, type NativeLink, type NativeLinkAdd, type NativeLinkChange, type NativeLinkSpec } from './native';
import { parseAddress } from './ip';
import * as validate from './validate';
import type { Netns } from './netns';
import { namespaceNames, RUN_DIR } from './run-dir';

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
      parent?: string;
      learning?: boolean;
      ttl?: number;
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
        spec.peer.netns = peerNs.path;
      }
      break;
    }
    case 'macvlan':
      validate.knownKeys(o, 'macvlan options', [...COMMON, 'parent', 'mode']);
      spec.parent = validate.ifname(o.parent, 'macvlan parent');
      if (o.mode !== undefined) spec.mode = validate.oneOf(o.mode, 'macvlan mode', ['private', 'vepa', 'bridge', 'passthru', 'source']);
      break;
    case 'vxlan': {
      validate.knownKeys(o, 'vxlan options', [...COMMON, 'id', 'remote', 'group', 'local', 'port', 'parent', 'learning', 'ttl']);
      const vx: NonNullable<NativeLinkAdd['vxlan']> = { id: validate.integer(o.id, 'vxlan id', 0, 2 ** 24 - 1) };
      if (o.remote !== undefined && o.group !== undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'vxlan takes remote or group, not both');
      const fam = o.local !== undefined ? parseAddress(o.local, 'vxlan local').family : undefined;
      if (o.remote !== undefined) vx.remote = parseAddress(o.remote, 'vxlan remote', fam).address;
      if (o.group !== undefined) vx.group = parseAddress(o.group, 'vxlan group', fam).address;
      if (o.local !== undefined) vx.local = parseAddress(o.local, 'vxlan local').address;
      if (o.port !== undefined) vx.port = validate.integer(o.port, 'vxlan port', 1, 65535, 'ERR_NETNS_INVALID_PORT');
      if (o.learning !== undefined) vx.learning = validate.bool(o.learning, 'vxlan learning');
      if (o.ttl !== undefined) vx.ttl = validate.integer(o.ttl, 'vxlan ttl', 0, 255);
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
  validate.knownKeys(o, 'link changes', ['up', 'mtu', 'mac', 'name', 'master', 'netns', 'group', 'txqlen', 'hairpin', 'promisc']);
  if (o.hairpin !== undefined) validate.bool(o.hairpin, 'hairpin');
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
    c.netns = ns.path;
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
   * `ip link add NAME link PARENT type macvlan mode MODE` / `ip link add NAME type vxlan id ID ...`,
   * with `master BR` and `up` in the same message. A veth whose peer cannot be set up is removed again.
   */
  async add(options: AddLinkOptions): Promise<void> {
    const spec = toNativeAdd(options);
    await call({ netns: this.ns.label, ifname: spec.name, syscall: 'add link' }, () => native.linkAdd(this.ns.path, spec));
  }

  /**
   * Changes a link. Equivalent to: `ip link set NAME up|down mtu N address MAC name NEW master BR|nomaster netns NS`
   * (and `ip link set NAME type bridge_slave hairpin on|off` for `hairpin`, `ip link set NAME promisc
   * on|off` for `promisc`).
   */
  async set(name: string, changes: LinkChanges): Promise<void> {
    validate.ifname(name);
    const c = toNativeChange(changes);
    const ctx = { netns: this.ns.label, ifname: name, syscall: 'set link' };
    // The bridge-port setting comes first: it needs the port still in this namespace and enslaved.
    if (changes.hairpin !== undefined || changes.promisc !== undefined) {
      await call(ctx, () => native.bridgePortSet(this.ns.path, name, { hairpin: changes.hairpin, promisc: changes.promisc }));
    }
    if (Object.keys(c).length > 0) await call(ctx, () => native.linkSet(this.ns.path, name, c));
  }

  /** Deletes a link (a veth takes its peer with it). Equivalent to: `ip link del NAME` */
  async delete(name: string, options: { missingOk?: boolean } = {}): Promise<void> {
    validate.ifname(name);
    try {
      await call({ netns: this.ns.label, ifname: name, syscall: 'delete link' }, () => native.linkDelete(this.ns.path, name));
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
    const [one] = await call(ctx, () => native.linkList(this.ns.path, name));
    // The master's name needs one more look-up; a full dump is only done when there is a master.
    const all = one.master ? await call(ctx, () => native.linkList(this.ns.path)) : [one];
    return (await this.toLinks([one], all, options.peerCandidates))[0];
  }

  /**
   * Every link of the namespace. Equivalent to: `ip -d link show`
   *
   * A veth peer's namespace is named by asking the kernel about the entries of /run/netns (one
   * RTM_GETNSID each); `peerCandidates` narrows that to the names given, for callers that know
   * where the peers can be (a topology's status, which would otherwise ask N×N times).
   */
  async list(options: { peerCandidates?: readonly string[] } = {}): Promise<Link[]> {
    validate.knownKeys(validate.object(options, 'list options'), 'list options', ['peerCandidates']);
    const raw = await call({ netns: this.ns.label, syscall: 'list links' }, () => native.linkList(this.ns.path));
    return this.toLinks(raw, raw, options.peerCandidates);
  }

  private async toLinks(raw: NativeLink[], all: NativeLink[], candidates?: readonly string[]): Promise<Link[]> {
    const byIndex = new Map(all.map((l) => [l.index, l.name]));
    const names = await peerNamespaceNames(this.ns.path, raw, candidates);
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
