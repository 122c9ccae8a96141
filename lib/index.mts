// ES module entry: `import { netns } from 'netns-kit'` from .mjs/.mts code (top-level await
// included). It re-exports the CommonJS build, so both kinds of importer share one addon instance.
//
// Named re-exports (not `const { ... } = cjs`): the emitted index.d.mts then declares the classes
// as classes, so ESM TypeScript code can write `let ns: Netns` and `e instanceof NetnsError`. Node
// finds these names in the CommonJS build by static analysis (cjs-module-lexer reads tsc's
// `Object.defineProperty(exports, ...)` output); test/package.test.ts imports every one of them.
import cjs from './index.js';

export { netns, Netns, NetnsError, Nat, NAT_DEFAULT_TABLE, cni, CniError, topology, TopologyError, gc, NetworkState, NetworkWatch, NamespaceWatch, linkKey, addressKey, routeKey, neighborKey, bulk, tcUnits, Firewall, FIREWALL_DEFAULT_TABLE, NetnsNet, NetnsDgram, fdbKey } from './index.js';
export type * from './index.js';
export default cjs;
