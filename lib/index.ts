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
  RUN_DIR: netnsApi.RUN_DIR,
};

export { Netns, type CreateOptions, type DeleteOptions, type OpenTarget } from './netns';
export { NetnsError, type InputErrorCode } from './errors';
export type { Link, LinkKind, AddLinkOptions, LinkChanges, VethPeerOptions, Links } from './links';
export type { Address, AddressOptions, AddressFilter, Addresses } from './addresses';
export type { Route, RouteSpec, RouteFilter, RouteScope, RouteType, Routes } from './routes';
export type { Neighbor, NeighborSpec, NeighborState, Neighbors } from './neighbors';
export type { Sysctl } from './sysctl';
export type { ExecOptions, ExecResult, SpawnOptions } from './process';
export type { Family, Cidr } from './ip';

/** The bulk fast path: many namespaces with veths into a bridge at once, and their teardown. */
export const bulk = {
  createMany: bulkApi.createMany,
  deleteMany: bulkApi.deleteMany,
  watchCleanup: bulkApi.watchCleanup,
  BRIDGE_MAX_PORTS: bulkApi.BRIDGE_MAX_PORTS,
};
export type { BulkNamespace, BulkVeth, BulkProgress, BulkResult, CreateManyOptions, DeleteManyOptions } from './bulk';
