/**
 * The one place that loads the C++ addon, and its complete type.
 *
 * Everything here is plain data, already validated by the callers in lib/. Every function that
 * touches the kernel returns a Promise settled from an addon-owned thread; a failure rejects with
 * a {@link NativeFailure} that lib/errors.ts turns into a NetnsError.
 *
 * `ns` arguments are namespace file paths (/run/netns/NAME, /proc/PID/ns/net, ...).
 */
import path from 'node:path';

/** What a native rejection carries: errno (negative, as Node does), operation, kernel text. */
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
  vxlan?: { id: number; remote?: string; group?: string; local?: string; port?: number; learning?: boolean; ttl?: number };
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
  | { kind: 'neigh'; del: boolean; neigh: NativeNeigh };

/** A fresh dump: where a stream starts ('initial') and how it recovers from lost events ('overflow'). */
export interface NativeWatchSnapshot {
  reason: 'initial' | 'overflow';
  /** always dumped: the other kinds name their devices */
  links: NativeLink[];
  addrs: NativeAddr[];
  routes: NativeRoute[];
  neighs: NativeNeigh[];
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
  /** bits: 1 links, 2 addresses, 4 routes, 8 neighbours */
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
  /** unshare + bind mount onto `path` (created O_EXCL); `sysctls` are written inside the new namespace first. */
  netnsCreate(runDir: string, path: string, sysctls: Array<[string, string]>): Promise<void>;
  netnsDelete(path: string): Promise<void>;
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
  linkList(ns: string, name?: string): Promise<NativeLink[]>;

  addrAdd(ns: string, change: NativeAddrChange): Promise<void>;
  addrDelete(ns: string, change: NativeAddrChange): Promise<void>;
  addrList(ns: string, family: number): Promise<NativeAddr[]>;

  routeAdd(ns: string, change: NativeRouteChange): Promise<void>;
  routeReplace(ns: string, change: NativeRouteChange): Promise<void>;
  routeDelete(ns: string, change: NativeRouteChange): Promise<void>;
  routeList(ns: string, family: number): Promise<NativeRoute[]>;

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
}

export interface NativeBridgePortChange {
  /** IFLA_BRPORT_MODE through IFLA_INFO_SLAVE_DATA (the link must be a bridge port) */
  hairpin?: boolean;
  /** IFF_PROMISC */
  promisc?: boolean;
}

function load(): NativeAddon {
  // NETNS_KIT_ADDON points at another build of the same addon (the sanitizer run uses it).
  const file = process.env.NETNS_KIT_ADDON ?? path.resolve(__dirname, '..', '..', 'build', 'Release', 'netns_kit.node');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file) as NativeAddon;
}

export const native: NativeAddon = load();

// A cached netlink socket keeps its namespace alive. When another process (or `ip netns delete`)
// removes a name, our idle socket would keep that namespace and its links around for as long as
// this process lives, so every 2 s idle sockets of vanished names are closed. Unref'd: it never
// keeps the process alive.
setInterval(() => native.sweepSockets(), 2000).unref();
