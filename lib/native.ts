/**
 * The one place that loads the C++ addon, and its complete type.
 *
 * Everything here is plain data, already validated by the callers in lib/. Every function that
 * touches the kernel returns a Promise settled from an addon-owned thread; a failure rejects with
 * a NetnsError built natively (through the factory registered below) from a {@link NativeFailure};
 * lib/errors.ts `call()` adds where it happened and the caller's stack.
 *
 * `ns` arguments are namespace references: a namespace file path (/run/netns/NAME,
 * /proc/PID/ns/net, ...), optionally followed by "\0DEV:INO" (`Netns.ref`): the identity the
 * handle was made for, checked where the addon opens the namespace (ESTALE when it changed).
 *
 * The addon works in the main thread and in any number of worker_threads at once: its state is
 * per environment, its threads are shared and stopped with the last environment (docs/embedding.md).
 */
import path from 'node:path';
import { NetnsError, nativeError } from './errors';

/**
 * The fields of a native failure: errno (negative, as Node does), operation, strerror text, kernel
 * text. The addon hands them to the registered factory, which makes the NetnsError it rejects with.
 */
export interface NativeFailure {
  errno: number;
  syscall: string;
  message: string;
  extack?: string;
  detail?: string;
}

export interface NativeLinkSpec {
  name: string;
  mac?: string;
  mtu?: number;
  index?: number;
  group?: number;
  txqlen?: number;
  up?: boolean;
}

export interface NativeLinkAdd extends NativeLinkSpec {
  kind: string;
  master?: string;
  peer?: NativeLinkSpec & { netns?: string };
  /** macvlan/vxlan lower device */
  parent?: string;
  /** macvlan mode: private, vepa, bridge, passthru, source */
  mode?: string;
  vxlan?: {
    id: number;
    remote?: string;
    group?: string;
    local?: string;
    port?: number;
    learning?: boolean;
    ttl?: number;
    /** routing (issue 16): miss notifications and the UDP source port range */
    l2miss?: boolean;
    l3miss?: boolean;
    srcPortRange?: [number, number];
  };
}

export interface NativeLinkChange {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** new name */
  name?: string;
  /** '' detaches from the master */
  master?: string;
  /** namespace path to move the link into */
  netns?: string;
  group?: number;
  txqlen?: number;
}

export interface NativeLink {
  index: number;
  name: string;
  kind: string;
  mac: string;
  mtu: number;
  flags: number;
  operstate: string;
  master: number;
  group: number;
  peerIndex: number;
  linkNetnsId: number;
  /** only when listed with stats */
  stats?: NativeLinkStats;
}

/** IFLA_STATS64 counters (linkList with stats). */
export interface NativeLinkStats {
  rxBytes: number;
  rxPackets: number;
  rxErrors: number;
  rxDropped: number;
  txBytes: number;
  txPackets: number;
  txErrors: number;
  txDropped: number;
  multicast: number;
  collisions: number;
}

export interface NativeAddrChange {
  dev: string;
  address: string;
  prefixlen: number;
  family: number;
  broadcast?: string;
  label?: string;
  scope?: number;
  noDad?: boolean;
  replace?: boolean;
}

export interface NativeAddr {
  index: number;
  family: number;
  address: string;
  prefixlen: number;
  scope: number;
  flags: number;
  label: string;
  peer?: string;
  broadcast?: string;
}

export interface NativeRouteChange {
  family: number;
  dst: string;
  dstLen: number;
  gateway?: string;
  dev?: string;
  src?: string;
  metric?: number;
  table?: number;
  scope?: number;
  protocol?: number;
  type?: number;
  /** multipath: one RTA_MULTIPATH entry per hop; weight 1-256 */
  nexthops?: Array<{ gateway?: string; dev?: string; weight: number }>;
  /** RTA_NH_ID: use this nexthop object (or group) */
  nhid?: number;
}

export interface NativeRoute {
  family: number;
  dst: string;
  dstLen: number;
  gateway: string;
  index: number;
  table: number;
  metric: number;
  scope: number;
  protocol: number;
  type: number;
  src: string;
  /** present only for a route using a nexthop object */
  nhid?: number;
  /** present only for a multipath route (then gateway/index are its first hop's) */
  nexthops?: Array<{ gateway: string; index: number; weight: number }>;
  /** RTA_ENCAP_TYPE by name ("seg6", "mpls", ...), when the route has an encapsulation */
  encap?: { type: string };
}

export interface NativeNeighChange {
  dev: string;
  address: string;
  family: number;
  mac?: string;
  state?: number;
  replace?: boolean;
  /** NTF_PROXY: a proxy ARP/NDP entry (no mac) */
  proxy?: boolean;
}

export interface NativeNeigh {
  index: number;
  family: number;
  address: string;
  mac: string;
  state: number;
  flags: number;
}

/** One change as the kernel announced it (RTM_NEW* / RTM_DEL*), in the list calls' record shapes. */
export type NativeWatchEvent =
  | { kind: 'link'; del: boolean; link: NativeLink }
  | { kind: 'addr'; del: boolean; addr: NativeAddr }
  | { kind: 'route'; del: boolean; route: NativeRoute }
  | { kind: 'neigh'; del: boolean; neigh: NativeNeigh }
  | { kind: 'fdb'; del: boolean; fdb: NativeFdb };

/** A fresh dump: where a stream starts ('initial') and how it recovers from lost events ('overflow'). */
export interface NativeWatchSnapshot {
  reason: 'initial' | 'overflow';
  /** always dumped: the other kinds name their devices */
  links: NativeLink[];
  addrs: NativeAddr[];
  routes: NativeRoute[];
  neighs: NativeNeigh[];
  /** bridge/vxlan forwarding entries (only when asked for: kinds bit 16) */
  fdb: NativeFdb[];
}

/** One delivery: the snapshot (if any) comes before the events; `closed` is the last delivery. */
export interface NativeWatchBatch {
  resync?: NativeWatchSnapshot;
  events: NativeWatchEvent[];
  /** the stream failed (it is closed too) */
  error?: NativeFailure;
  closed?: true;
}

export interface NativeWatchOptions {
  /** bits: 1 links, 2 addresses, 4 routes, 8 neighbours, 16 fdb */
  kinds: number;
  /** bytes for the multicast socket's receive buffer */
  receiveBuffer: number;
}

/** One side of a conntrack entry. */
export interface NativeCtTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/** A conntrack entry as ctnetlink reports it (ports are 0 for protocols without ports). */
export interface NativeCtEntry {
  /** 4 or 6 */
  family: number;
  /** IPPROTO_* number */
  proto: number;
  /** the kernel's id of the entry (deleting with it never hits a newer flow with the same tuple) */
  id?: number;
  orig: NativeCtTuple;
  reply: NativeCtTuple;
}

/** One namespace of a bulk chunk (lib/bulk.ts has validated and resolved everything). */
export interface NativeBulkItem {
  /** namespace file to create (O_EXCL), /run/netns/NAME */
  path: string;
  /** the namespace's name, for messages */
  name: string;
  /** `index`: the peer's ifindex inside; `hostIndex`: the host end's (absent: the kernel picks) */
  veth?: { name: string; peerName: string; bridge: string; index: number; hostIndex?: number; group: number; mtu?: number };
  loopbackUp: boolean;
  /** on the veth peer (or lo without a veth) */
  /** `noDad`: IFA_F_NODAD (IPv6) */
  addresses: Array<{ family: number; address: string; prefixlen: number; noDad?: boolean }>;
  /** `devIndex`: 0 none, 1 lo, else the peer's index */
  routes: Array<NativeRouteChange & { devIndex?: number }>;
  /** paths below /proc/sys written inside the new namespace before anything else */
  sysctls: Array<[string, string]>;
}

/** What a bulk chunk made (paths), and why it stopped if it did. */
export interface NativeBulkChunkResult {
  created: string[];
  error?: NativeFailure & { netns?: string };
}

export interface NativeAddon {
  /**
   * unshare + bind mount onto `path` (created O_EXCL); `sysctls` are written inside the new namespace
   * first; its netlink socket is opened from inside; `loopbackUp` brings lo up. Resolves with the
   * namespace's identity (what a Netns handle is bound to; the registry records its inode). A
   * failure leaves nothing behind.
   */
  netnsCreate(runDir: string, path: string, sysctls: Array<[string, string]>, loopbackUp?: boolean): Promise<{ dev: number; ino: number }>;
  /** `ns` may be a bound reference: ESTALE (nothing deleted) when the path holds another namespace. */
  netnsDelete(ns: string): Promise<void>;
  /** RTM_GETNSID: the id `ns` has for each of `others`, -1 when none. */
  netnsIds(ns: string, others: string[]): Promise<number[]>;
  /** Closes the cached netlink socket of one namespace, or every idle one for ''. */
  releaseSockets(ns: string): void;
  openSocketCount(): number;
  /** Closes idle cached sockets of namespaces whose name is gone or now names another; returns how many. */
  sweepSockets(): number;
  /** Counters: dumps retried after NLM_F_DUMP_INTR, sockets ever opened, sockets open now. */
  netlinkStats(): { dumpRetries: number; socketsOpened: number; openSockets: number };

  linkAdd(ns: string, spec: NativeLinkAdd): Promise<void>;
  linkSet(ns: string, name: string, change: NativeLinkChange): Promise<void>;
  linkDelete(ns: string, name: string): Promise<void>;
  /** `stats`: include IFLA_STATS64 counters in each record. */
  linkList(ns: string, name?: string, stats?: boolean): Promise<NativeLink[]>;

  addrAdd(ns: string, change: NativeAddrChange): Promise<void>;
  addrDelete(ns: string, change: NativeAddrChange): Promise<void>;
  addrList(ns: string, family: number): Promise<NativeAddr[]>;

  routeAdd(ns: string, change: NativeRouteChange): Promise<void>;
  routeReplace(ns: string, change: NativeRouteChange): Promise<void>;
  routeDelete(ns: string, change: NativeRouteChange): Promise<void>;
  routeList(ns: string, family: number): Promise<NativeRoute[]>;
  /** RTM_GETROUTE for one address (`ip route get`); rejects ENETUNREACH when nothing routes it. */
  routeGet(ns: string, query: NativeRouteQuery): Promise<NativeRoute>;

  neighAdd(ns: string, change: NativeNeighChange): Promise<void>;
  neighDelete(ns: string, change: NativeNeighChange): Promise<void>;
  neighList(ns: string): Promise<NativeNeigh[]>;

  /** `key` is a path below /proc/sys (net/ipv4/ip_forward). */
  sysctlGet(ns: string, key: string): Promise<string>;
  sysctlSet(ns: string, key: string, value: string): Promise<void>;

  /**
   * Runs one libnftables JSON command document ({"nftables": [...]}) inside `ns` as one batch
   * (all or nothing); resolves with libnftables' JSON output ('' when a command prints nothing).
   */
  nftRun(ns: string, json: string): Promise<string>;
  /** ctnetlink dump of one family (4|6), only protocol `proto` unless 0. */
  conntrackList(ns: string, family: number, proto: number): Promise<NativeCtEntry[]>;
  /** Deletes these entries by original tuple (and id); resolves with how many were deleted. */
  conntrackDelete(ns: string, entries: NativeCtEntry[]): Promise<number>;
  /** Bridge-port mode and promiscuity of a link (CNI hairpinMode / promiscMode). */
  bridgePortSet(ns: string, name: string, change: NativeBridgePortChange): Promise<void>;
  /** flock(fd, LOCK_EX|LOCK_NB): true when taken, false when held elsewhere (synchronous, never waits). */
  flockTry(fd: number): boolean;

  /** Subscribes (sockets opened inside `ns`); resolves with the subscription id. `onBatch` runs on the main thread. */
  watchOpen(ns: string, options: NativeWatchOptions, onBatch: (batch: NativeWatchBatch) => void): Promise<number>;
  /** Stops (true) or resumes (false) reading the subscription's socket. */
  watchPause(id: number, paused: boolean): void;
  /** Closes both sockets; the last batch (`closed: true`) follows. */
  watchClose(id: number): void;

  /** Creates a chunk of namespaces with their veths; resolves (never rejects) with what it made. */
  bulkCreateChunk(runDir: string, hostNs: string, items: NativeBulkItem[]): Promise<NativeBulkChunkResult>;
  /** RTM_DELLINK by IFLA_GROUP in `hostNs` (`ip link del group N`); an empty group is fine. */
  bulkDeleteGroup(hostNs: string, group: number): Promise<void>;
  /** umount + unlink each path (missing ones skipped), dropping cached sockets first. */
  bulkRelease(paths: string[]): Promise<void>;
  /** Starts watching namespaces (before they are released); `missing` were not namespaces. */
  bulkWatchBegin(paths: string[]): Promise<{ handle: number; missing: string[] }>;
  /** Resolves when the kernel has finished cleaning up every watched namespace. */
  bulkWatchWait(handle: number, timeoutMs: number): Promise<void>;
  /** Drops a watch that will not be waited for. */
  bulkWatchClose(handle: number): void;
  /** RLIMIT_NOFILE (soft) and the number of descriptors open now. */
  bulkFdBudget(): { limit: number; open: number };

  // ---- traffic control (lib/tc.ts, lib/shape.ts) ----
  /** RTM_NEWQDISC / RTM_DELQDISC: add (CREATE|EXCL), replace (CREATE|REPLACE), change (no flags), delete. */
  tcQdisc(ns: string, op: NativeTcOp, spec: NativeTcSpec): Promise<void>;
  /** RTM_NEWTCLASS / RTM_DELTCLASS. */
  tcClass(ns: string, op: NativeTcOp, spec: NativeTcSpec): Promise<void>;
  /** RTM_NEWTFILTER / RTM_DELTFILTER. */
  tcFilter(ns: string, op: NativeTcOp, spec: NativeTcFilterSpec): Promise<void>;
  /** Dump of qdiscs (all devices unless `dev`), classes or filters (of `dev`, below `parent`). */
  tcList(ns: string, what: 'qdisc' | 'class' | 'filter', dev?: string, parent?: number): Promise<NativeTcEntry[]>;
  /**
   * One link's shaping state without dumps (RTM_GETQDISC by parent): its root qdisc (absent for the
   * kernel default) and the tbf below a netem root, its ingress qdisc, and its ifb `nkifbINDEX`.
   */
  tcLinkState(ns: string, dev: string): Promise<NativeTcLinkState>;
}

export interface NativeTcLinkState {
  index: number;
  /** 0: no ifb */
  ifbIndex: number;
  root?: NativeTcEntry;
  child?: NativeTcEntry;
  ingress?: NativeTcEntry;
  ifbRoot?: NativeTcEntry;
  ifbChild?: NativeTcEntry;
}

export type NativeTcOp = 'add' | 'replace' | 'change' | 'delete';

/**
 * Options of a qdisc or class, in kernel units: rates bytes/s, sizes bytes, times microseconds,
 * probabilities as 32-bit fractions (0xffffffff = 100 %). Which apply depends on the kind.
 */
export interface NativeTcOptions {
  rate?: number;
  burst?: number;
  limit?: number;
  latency?: number;
  peakrate?: number;
  mtu?: number;
  defaultClass?: number;
  r2q?: number;
  ceil?: number;
  cburst?: number;
  prio?: number;
  quantum?: number;
  delay?: number;
  jitter?: number;
  loss?: number;
  lossCorrelation?: number;
  duplicate?: number;
  corrupt?: number;
  reorder?: number;
  reorderCorrelation?: number;
  gap?: number;
  target?: number;
  interval?: number;
  flows?: number;
  ecn?: boolean;
  perturb?: number;
  bands?: number;
  priomap?: number[];
}

export interface NativeTcSpec {
  dev: string;
  kind?: string;
  parent: number;
  handle?: number;
  options?: NativeTcOptions;
}

export interface NativeTcAction {
  kind: string;
  /** mirred: TCA_EGRESS_REDIR (1), TCA_EGRESS_MIRROR (2), TCA_INGRESS_REDIR (3), TCA_INGRESS_MIRROR (4) */
  mirredAction?: number;
  /** mirred: TC_ACT_* after the action (TC_ACT_STOLEN for redirect, TC_ACT_PIPE for mirror) */
  policy?: number;
  /** mirred: target device in the same namespace */
  dev?: string;
  /** gact: TC_ACT_* verdict */
  gactAction?: number;
}

export interface NativeTcFilterSpec extends NativeTcSpec {
  prio?: number;
  /** ETH_P_* in host order (default ETH_P_ALL) */
  protocol?: number;
  classid?: number;
  /** u32 keys: 32-bit value/mask at byte offset `off` (host order) */
  keys?: Array<{ value: number; mask: number; off: number; offmask?: number }>;
  actions?: NativeTcAction[];
}

export interface NativeTcEntry {
  ifindex: number;
  parent: number;
  handle: number;
  kind: string;
  stats: { bytes: number; packets: number; drops: number; overlimits: number; requeues: number; backlog: number; qlen: number };
  /** kind-specific, in the units of NativeTcOptions */
  options: Record<string, number>;
  /** prio qdiscs */
  priomap?: number[];
  /** filters only */
  prio?: number;
  protocol?: number;
  classid?: number;
  keys?: Array<{ value: number; mask: number; off: number; offmask: number }>;
  actions?: Array<{ kind: string; mirredAction?: number; policy?: number; ifindex?: number }>;
}

// ---- embedding (docs/embedding.md) ------------------------------------------------------------
export interface NativeAddon {
  /** How this environment's native failures become Errors (lib/errors.ts nativeError). */
  setErrorFactory(make: (failure: NativeFailure) => Error): void;
}

// ---- sockets inside a namespace (lib/sockets.ts, native/socket.cc) ----

/** An address to bind or connect to: an IP literal without zone, the zone apart (an interface name inside the namespace). */
export interface NativeEndpoint {
  /** '' = the wildcard address of the family */
  address: string;
  port: number;
  scope?: string;
}

/** What socketOpen makes, in this order, inside the namespace: socket(), options, bind(), connect(). */
export interface NativeSocketSpec {
  family: 4 | 6;
  type: 'tcp' | 'udp' | 'raw';
  protocol?: number;
  /** SO_REUSEADDR */
  reuseAddr?: boolean;
  /** IPV6_V6ONLY (IPv6 only; absent: the namespace's net.ipv6.bindv6only) */
  ipv6Only?: boolean;
  /** the default wildcard listener: a kernel without IPv6 gets 0.0.0.0 instead of :: */
  fallbackV4?: boolean;
  bind?: NativeEndpoint;
  /** started non-blocking: `connecting` says whether it still has to finish */
  connect?: NativeEndpoint;
}

// (declaration merging: these members join NativeAddon above)
export interface NativeAddon {
  /** Creates the socket inside `ns` on an addon thread; the caller owns `fd` (non-blocking, close-on-exec). */
  socketOpen(ns: string, spec: NativeSocketSpec): Promise<{ fd: number; connecting: boolean }>;
  /**
   * Waits on this thread's event loop until a connecting `fd` is writable, then calls `done` with
   * 0 (connected) or the negative errno of the failure and its text. Returns the wait's id.
   */
  socketWaitConnect(fd: number, done: (errno: number, message: string) => void): number;
  /** Stops a wait without calling `done` (the caller closes the fd); false when it had finished. */
  socketCancelWait(id: number): boolean;
}

export interface NativeBridgePortChange {
  /** IFLA_BRPORT_MODE through IFLA_INFO_SLAVE_DATA (the link must be a bridge port) */
  hairpin?: boolean;
  /** IFLA_BRPORT_ISOLATED (firewall: bridge port isolation), in the same message as `hairpin` */
  isolated?: boolean;
  /** IFF_PROMISC */
  promisc?: boolean;
}

// ---- Routing beyond one table (issue 16): route look-up, policy rules, nexthop objects, FDB ----

/** `ip route get` query: addresses of `family`, devices by name. */
export interface NativeRouteQuery {
  family: number;
  dst: string;
  from?: string;
  iif?: string;
  oif?: string;
  mark?: number;
}

/** A policy rule (FIB rule) as sent and as listed; unset fields are absent (or 0 / '' in lists). */
export interface NativeRule {
  family: number;
  priority?: number;
  src?: string;
  srcLen?: number;
  dst?: string;
  dstLen?: number;
  iif?: string;
  oif?: string;
  fwmark?: number;
  fwmask?: number;
  table?: number;
  /** FR_ACT_*: 1 lookup (to table), 6 blackhole, 7 unreachable, 8 prohibit */
  action?: number;
  tos?: number;
  ipProto?: number;
  sport?: [number, number];
  dport?: [number, number];
}

/** A nexthop object (RTM_NEWNEXTHOP). `weight` in groups is 1-256 as ip(8) shows it. */
export interface NativeNexthop {
  id: number;
  family: number;
  gateway?: string;
  /** device name (add) */
  dev?: string;
  /** device index (list) */
  index?: number;
  blackhole?: boolean;
  fdb?: boolean;
  group?: Array<{ id: number; weight: number }>;
  /** NEXTHOP_GRP_TYPE_*: 0 multipath, 1 resilient */
  groupType?: number;
  protocol?: number;
}

/** A bridge / vxlan forwarding entry (AF_BRIDGE neighbour). */
export interface NativeFdbChange {
  dev: string;
  mac: string;
  dst?: string;
  vni?: number;
  port?: number;
  vlan?: number;
  /** NTF_MASTER (the bridge's table) and/or NTF_SELF (the device's own, e.g. vxlan) */
  master?: boolean;
  self?: boolean;
  /** NUD_* bits: 0x80 permanent, 0x40 noarp (static) */
  state?: number;
  /** NLM_F_APPEND: another remote for the same MAC (flood lists) */
  append?: boolean;
  replace?: boolean;
}

export interface NativeFdb {
  index: number;
  mac: string;
  dst: string;
  vni: number;
  port: number;
  vlan: number;
  /** NTF_* bits */
  flags: number;
  state: number;
  /** ifindex of the bridge (NDA_MASTER), 0 when none */
  master: number;
}

/** Merged into NativeAddon (declaration merging keeps this block in one place). */
export interface NativeAddon {
  ruleAdd(ns: string, rule: NativeRule): Promise<void>;
  ruleDelete(ns: string, rule: NativeRule): Promise<void>;
  ruleList(ns: string, family: number): Promise<NativeRule[]>;
  nexthopAdd(ns: string, nh: NativeNexthop, replace: boolean): Promise<void>;
  nexthopDelete(ns: string, id: number): Promise<void>;
  nexthopList(ns: string): Promise<NativeNexthop[]>;
  fdbAdd(ns: string, entry: NativeFdbChange): Promise<void>;
  fdbDelete(ns: string, entry: NativeFdbChange): Promise<void>;
  fdbList(ns: string): Promise<NativeFdb[]>;
  /** proxy ARP/NDP entries (a dump with ndm_flags = NTF_PROXY) */
  neighProxyList(ns: string): Promise<NativeNeigh[]>;
}

/**
 * What the prebuilt binary needs at run time: the shared libraries it links (libnl-3,
 * libnl-route-3, libnftables), by soname prefix, and the runtime package that ships each.
 * A dlopen failure names the first missing soname; the error then names the package to install.
 */
const RUNTIME_LIBRARIES: { soname: string; debian: string; fedora: string; alpine: string }[] = [
  { soname: 'libnl-route-3.so', debian: 'libnl-route-3-200', fedora: 'libnl3', alpine: 'libnl3' },
  { soname: 'libnl-3.so', debian: 'libnl-3-200', fedora: 'libnl3', alpine: 'libnl3' },
  { soname: 'libnftables.so', debian: 'libnftables1', fedora: 'nftables', alpine: 'nftables' },
];

const RUNTIME_INSTALL = 'Debian/Ubuntu: apt-get install libnl-3-200 libnl-route-3-200 libnftables1; Fedora: dnf install libnl3 nftables; Alpine: apk add libnl3 nftables';
const REBUILD =
  '`npm rebuild netns-kit` compiles it for this system (needs a C++ toolchain, pkg-config and the -dev packages: ' +
  'Debian/Ubuntu: libnl-3-dev libnl-route-3-dev libnftables-dev; Fedora: libnl3-devel nftables-devel; Alpine: libnl3-dev nftables-dev linux-headers)';

/** The message of an ERR_NETNS_ADDON error: what failed, and the fix. Exported for the tests. */
export function addonFailureMessage(file: string | undefined, cause: string): string {
  const first = cause.split('\n')[0].replace(/\.$/, '');
  const where = file ? ` (${file})` : '';
  const missingLib = RUNTIME_LIBRARIES.find((l) => first.includes(l.soname) && /cannot open shared object/i.test(first));
  if (missingLib) {
    return (
      `ERR_NETNS_ADDON: netns-kit cannot load its native addon${where}: the shared library ${missingLib.soname}* is missing. ` +
      `Fix: install the runtime libraries (${RUNTIME_INSTALL}). Cause: ${first}`
    );
  }
  return (
    `ERR_NETNS_ADDON: netns-kit cannot load its native addon${where}: ${first}. ` +
    'No prebuilt binary fits this system (prebuilds: linux-x64 glibc, Node-API 8) and none was compiled here ' +
    '(install scripts skipped: --ignore-scripts, pnpm, npm without approval). ' +
    `Fix: ${REBUILD}. The binary needs at run time: ${RUNTIME_INSTALL}.`
  );
}

/**
 * Finds and loads the addon: NETNS_KIT_ADDON if set (the sanitizer run points it at an
 * instrumented build), else through node-gyp-build: a local compile in build/Release if there is
 * one, else the prebuilt binary for this platform under prebuilds/. Any failure becomes one
 * NetnsError ERR_NETNS_ADDON naming the fix, instead of a MODULE_NOT_FOUND or dlopen stack.
 */
function load(): NativeAddon {
  const root = path.resolve(__dirname, '..', '..');
  let file: string | undefined = process.env.NETNS_KIT_ADDON || undefined;
  try {
    if (!file) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const gypBuild = require('node-gyp-build') as { path(dir: string): string };
      file = gypBuild.path(root);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeAddon;
  } catch (e) {
    const err = new NetnsError('ERR_NETNS_ADDON', addonFailureMessage(file, (e as Error)?.message ?? String(e)), {
      syscall: 'load addon',
      detail: file,
    });
    (err as Error & { cause?: unknown }).cause = e;
    throw err;
  }
}

let loaded: NativeAddon | undefined;

/** Loads the addon on first use, so `require('netns-kit')` and `netns-kit --help` work without it. */
export function loadNative(): NativeAddon {
  if (loaded) return loaded;
  loaded = load();
  const addon = loaded;
  // This environment's native failures become NetnsErrors natively (the factory is per environment).
  addon.setErrorFactory(nativeError);
  // A cached netlink socket keeps its namespace alive. When another process (or `ip netns delete`)
  // removes a name, our idle socket would keep that namespace and its links around for as long as
  // this process lives, so every 2 s idle sockets of vanished names are closed. Unref'd: it never
  // keeps the process alive.
  setInterval(() => addon.sweepSockets(), 2000).unref();
  return addon;
}

/**
 * The addon. Loaded lazily on first property access: a missing or unloadable binary throws
 * NetnsError ERR_NETNS_ADDON from the first call that needs it (inside `call()` that is a
 * rejection), never at import.
 */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  // Every operation goes to the loaded addon object, so replacing a function (jest.spyOn in the
  // tests) replaces it where the calls look it up.
  get: (_target, prop) => Reflect.get(loadNative(), prop),
  set: (_target, prop, value) => Reflect.set(loadNative(), prop, value),
  has: (_target, prop) => Reflect.has(loadNative(), prop),
  ownKeys: () => Reflect.ownKeys(loadNative()),
  getOwnPropertyDescriptor: (_target, prop) => Reflect.getOwnPropertyDescriptor(loadNative(), prop),
  defineProperty: (_target, prop, descriptor) => Reflect.defineProperty(loadNative(), prop, descriptor),
  deleteProperty: (_target, prop) => Reflect.deleteProperty(loadNative(), prop),
});
