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
export { NetnsError, type InputErrorCode } from './errors';
export type { Link, LinkKind, AddLinkOptions, LinkChanges, VethPeerOptions, Links } from './links';
export type { Address, AddressOptions, AddressFilter, Addresses } from './addresses';
export type { Route, RouteSpec, RouteFilter, RouteScope, RouteType, Routes } from './routes';
export type { Neighbor, NeighborSpec, NeighborState, Neighbors } from './neighbors';
export type { Sysctl } from './sysctl';
export type { ExecOptions, ExecResult, SpawnOptions } from './process';
export type { Family, Cidr } from './ip';
export { Nat, DEFAULT_TABLE as NAT_DEFAULT_TABLE, type NatResult, type ApplyResult } from './nat';
export type { NatRule, NatRuleSpec, MasqueradeSpec, SnatSpec, PortForwardSpec, ServiceSpec, NatProtocol, PortSpec, ServiceBackend, NatKind } from './nat-rules';
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
