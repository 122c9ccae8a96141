/**
 * Declarative topologies: namespaces, bridges, veth links, addresses, routes, sysctls and NAT
 * rules described as data (or a JSON/YAML file), brought up and down as a whole.
 *
 * ```ts
 * import { topology } from 'netns-kit';
 * const t = await topology.load('lab.yaml');
 * const handle = await topology.up(t, { onProgress: (p) => console.log(p.done, p.total, p.step) });
 * await topology.down(t);
 * ```
 */
export * from './schema';
export { validate, natTableName, LINUX_BRIDGE_MAX_PORTS } from './validate';
export { load, loadAny, parse, parseAny } from './load';
export {
  upMultiHost,
  downMultiHost,
  expand as expandMultiHost,
  validateMultiHost,
  isMultiHost,
  hostTopologyName,
  type MultiHostTopology,
  type HostSpec,
  type OverlaySpec,
} from './multihost';
export { up, down, TopologyError, type Progress, type UpOptions, type DownOptions, type DownResult, type TopologyHandle } from './apply';
export { status, type TopologyStatus, type NamespaceStatus } from './status';
