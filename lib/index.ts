/**
 * netns-kit: Linux network namespaces, links, addresses, routes, neighbours and processes from
 * TypeScript, over a C++ addon on libnl.
 *
 * ```ts
 * import { netns } from 'netns-kit';
 * await using red = await netns.create('red');
 * ```
 */
import * as netnsApi from './netns';
import * as bulkApi from './bulk';

/** Namespace functions: create, open, current, list, delete. */
export const netns = {
  create: netnsApi.create,
  open: netnsApi.open,
  current: netnsApi.current,
  list: netnsApi.list,
  delete: netnsApi.remove,
  watch: netnsApi.watch,
  RUN_DIR: netnsApi.RUN_DIR,
};

export { Netns, type CreateOptions, type DeleteOptions, type OpenTarget } from './netns';
// embedding (docs/embedding.md): what a Netns handle is bound to
export type { NamespaceIdentity } from './netns';
export { NetnsError, type InputErrorCode, type NetnsErrorCode, type SystemErrorCode } from './errors';
export type { Link, LinkKind, AddLinkOptions, LinkChanges, VethPeerOptions, Links } from './links';
export type { Address, AddressOptions, AddressFilter, Addresses } from './addresses';
export type { Route, RouteSpec, RouteFilter, RouteScope, RouteType, Routes } from './routes';
export type { Neighbor, NeighborSpec, NeighborState, Neighbors } from './neighbors';
// routing beyond one table (issue 16)
export type { RouteNexthop, RouteQuery } from './routes';
export type { Rule, RuleSpec, RuleAction, RuleTable, PortRange, Rules } from './rules';
export type { Nexthop, NexthopSpec, NexthopGroupMember, Nexthops } from './nexthops';
export type { FdbEntry, FdbSpec, FdbState, Fdb } from './fdb';
export { fdbKey, type FdbEvent } from './watch';
export type { Sysctl } from './sysctl';
export type { ExecOptions, ExecResult, SpawnOptions } from './process';
export type { Family, Cidr } from './ip';
export { Nat, DEFAULT_TABLE as NAT_DEFAULT_TABLE, type NatResult, type ApplyResult } from './nat';
export type { NatRule, NatRuleSpec, MasqueradeSpec, SnatSpec, PortForwardSpec, ServiceSpec, NatProtocol, PortSpec, ServiceBackend, NatKind } from './nat-rules';
export { Firewall, DEFAULT_FIREWALL_TABLE as FIREWALL_DEFAULT_TABLE, type FirewallOptions, type PolicyResult, type FirewallApplySpec, type FirewallApplyResult, type FirewallState } from './firewall';
export type { FirewallAction, FirewallMatch, FirewallPolicy, FirewallRule, FirewallRuleSpec, ChainPolicy, FirewallChain, FirewallProtocol } from './firewall-rules';
import { runPlugin as cniRun } from './cni/plugin';
import { SUPPORTED_VERSIONS as CNI_VERSIONS } from './cni/spec';

/**
 * The CNI plugin in-process (what the `netns-kit-cni` executable runs): `cni.run(env, stdin)`
 * resolves with the stdout text and exit code the spec defines. It acts in the calling process's
 * network namespace, like the executable. See docs/cni.md.
 */
export const cni = { run: cniRun, SUPPORTED_VERSIONS: CNI_VERSIONS };
export { CniError, type CniResult } from './cni/spec';
export type { PluginOutput as CniPluginOutput, RunOptions as CniRunOptions } from './cni/plugin';

import * as topologyApi from './topology/index';

/** Declarative topologies: load, validate, up, down, status. */
export const topology = {
  load: topologyApi.load,
  parse: topologyApi.parse,
  validate: topologyApi.validate,
  up: topologyApi.up,
  down: topologyApi.down,
  status: topologyApi.status,
  // multi-host topologies (issue 16): simulated on one machine, or one host's part per machine
  loadAny: topologyApi.loadAny,
  parseAny: topologyApi.parseAny,
  upMultiHost: topologyApi.upMultiHost,
  downMultiHost: topologyApi.downMultiHost,
  expandMultiHost: topologyApi.expandMultiHost,
  validateMultiHost: topologyApi.validateMultiHost,
};
export { TopologyError } from './topology/index';
export type {
  Topology,
  TopologyOptions,
  NamespaceSpec,
  BridgeSpec,
  VethSpec,
  VethEndSpec,
  TemplateSpec,
  TemplateUplink,
  AddressPool,
  NatRuleSpec as TopologyNatRuleSpec,
  Progress,
  UpOptions,
  DownOptions,
  DownResult,
  TopologyHandle,
  TopologyStatus,
  NamespaceStatus,
  MultiHostTopology,
  HostSpec,
  OverlaySpec,
} from './topology/index';
export { gc, type GcOptions, type GcReport } from './gc';
export {
  NetworkState,
  NetworkWatch,
  NamespaceWatch,
  linkKey,
  addressKey,
  routeKey,
  neighborKey,
  type NetworkEvent,
  type LinkEvent,
  type AddressEvent,
  type RouteEvent,
  type NeighborEvent,
  type ResyncEvent,
  type WatchAction,
  type WatchOptions,
  type NamespaceEvent,
  type NamespaceWatchOptions,
} from './watch';

/** The bulk fast path: many namespaces with veths into a bridge at once, and their teardown. */
export const bulk = {
  createMany: bulkApi.createMany,
  deleteMany: bulkApi.deleteMany,
  watchCleanup: bulkApi.watchCleanup,
  BRIDGE_MAX_PORTS: bulkApi.BRIDGE_MAX_PORTS,
};
export type { BulkNamespace, BulkVeth, BulkProgress, BulkResult, CreateManyOptions, DeleteManyOptions } from './bulk';

// Sockets inside a namespace, used from this process (ns.net, ns.dgram, ns.socket, ns.agent, ns.fetch): docs/sockets.md
export { NetnsNet, NetnsDgram, type ConnectOptions, type ListenOptions, type DgramOptions, type RawSocketOptions } from './sockets';
export type { NetnsHttpAgent, NetnsHttpsAgent, NetnsHttpAgentOptions, NetnsHttpsAgentOptions, NetnsDispatcherOptions, NetnsAgentExtras } from './http-agent';
// Traffic control (docs/tc.md): links.shape()/getShape()/stats(), ns.tc.{qdiscs,classes,filters}.
import * as shapeApi from './shape';
/** tc-style unit parsing, as links.shape() reads its input: '10mbit' -> bits/s, '32kb' -> bytes, '40ms' -> ms, '1%' -> percent. */
export const tcUnits = { parseRate: shapeApi.parseRate, parseSize: shapeApi.parseSize, parseTime: shapeApi.parseTime, parsePercent: shapeApi.parsePercent };
export type { LinkStats } from './links';
export type { ShapeSpec, LinkShapeSpec, Shape, LinkShape } from './shape';
export type { Tc, QdiscSpec, QdiscKind, ClassSpec, FilterSpec, FilterKind, ActionSpec, U32Match, Qdisc, TcClass, Filter, TcStats } from './tc';
