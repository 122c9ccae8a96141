// ES module entry: `import { netns } from 'netns-kit'` from .mjs/.mts code (top-level await
// included). It re-exports the CommonJS build, so both kinds of importer share one addon instance.
import cjs from './index.js';

export const { netns, Netns, NetnsError, Nat, NAT_DEFAULT_TABLE, cni, CniError, topology, TopologyError, gc, NetworkState, NetworkWatch, NamespaceWatch, linkKey, addressKey, routeKey, neighborKey, bulk } = cjs;
// sockets inside a namespace (docs/sockets.md)
export const { NetnsNet, NetnsDgram } = cjs;
export type * from './index.js';
export default cjs;
