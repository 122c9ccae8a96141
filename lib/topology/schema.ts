/**
 * The topology file format: a plain object (or the same thing as JSON or YAML) describing
 * namespaces, bridges, veth links, addresses, routes, sysctls and NAT rules. docs/topology.md is
 * the reference with a complete example; `validate()` checks a value against these types and
 * names the offending path on error.
 */
import type { LinkShapeSpec } from '../shape';
import type { FirewallMatch } from '../firewall-rules';
import type { RouteSpec } from '../routes';

/** A whole topology. */
export interface Topology {
  /**
   * Identifies the topology in the registry (what it owns) and names its nftables table
   * (`inet nk_NAME`): 1-32 characters of A-Z a-z 0-9 _ -.
   */
  name: string;
  options?: TopologyOptions;
  /** Namespaces spelled out one by one. */
  namespaces?: NamespaceSpec[];
  /** Many alike namespaces from one description each. */
  templates?: TemplateSpec[];
}

export interface TopologyOptions {
  /**
   * Most ports one bridge may get (1-1023, default 1023: the Linux bridge limit). A bridge that
   * would get more is an error unless `spread` is set.
   */
  maxPortsPerBridge?: number;
  /**
   * Spread ports over several bridges when one would get more than `maxPortsPerBridge`: the extra
   * bridges are named BRIDGE-1, BRIDGE-2, ... (same settings, no addresses) and each is joined to
   * the first by a veth patch pair (BRIDGE-pN on the first, BRIDGE-qN on the extra one), so all
   * ports stay in one layer-2 segment and the first bridge's address stays the gateway.
   */
  spread?: boolean;
  /** Namespaces set up at the same time (1-64, default 8; the addon has 4 worker threads). */
  concurrency?: number;
}

/** One namespace. */
export interface NamespaceSpec {
  /** /run/netns name (as `ip netns add NAME`) */
  name: string;
  /**
   * The namespace exists already and is not the topology's: `up` neither creates nor deletes it,
   * only adds the bridges, links, routes and NAT rules declared in it (and `down` removes exactly
   * those). Default false: the topology creates the namespace and `down` deletes it.
   */
  existing?: boolean;
  /** bring `lo` up (default true; for `existing` namespaces default: leave it as it is) */
  loopbackUp?: boolean;
  /** false: IPv6 off in the namespace (net.ipv6.conf.{all,default}.disable_ipv6=1). Default: on. */
  ipv6?: boolean;
  /** net.* sysctls, e.g. { "net.ipv4.ip_forward": 1 } */
  sysctls?: Record<string, string | number | boolean>;
  bridges?: BridgeSpec[];
  /** veth pairs with this end here; the peer may be in any namespace of the topology */
  links?: VethSpec[];
  routes?: RouteSpec[];
  /** NAT rules, applied in this namespace's table `inet nk_TOPOLOGY` (needs netns-kit's NAT support) */
  nat?: NatRuleSpec[];
  /** filtering in this namespace's table `inet nkfw_TOPOLOGY` (lib/firewall.ts), set in one transaction */
  firewall?: FirewallSection;
}

/**
 * A namespace's firewall (docs/firewall.md): chain policies (left out: accept) and rules in
 * evaluation order, each as `ns.firewall.allow/deny/reject` takes it plus its `action`.
 */
export interface FirewallSection {
  policy?: { input?: 'accept' | 'drop'; forward?: 'accept' | 'drop'; output?: 'accept' | 'drop' };
  rules?: Array<FirewallMatch & { action: 'allow' | 'deny' | 'reject' }>;
  /** in a namespace with a bridge: bridged traffic passes the forward chain (br_netfilter); default true */
  bridgeNetfilter?: boolean;
}

export interface BridgeSpec {
  name: string;
  /** default true */
  up?: boolean;
  mtu?: number;
  /** CIDRs, e.g. ["192.168.15.5/24"] */
  addresses?: string[];
}

/** One end of a veth pair. */
export interface VethEndSpec {
  name: string;
  /** default true */
  up?: boolean;
  mtu?: number;
  /** a bridge declared in the same namespace */
  master?: string;
  addresses?: string[];
  /** links.shape() of this end: rate, delay, loss, ... and `ingress` (docs/tc.md) */
  shape?: LinkShapeSpec;
}

export interface VethSpec extends VethEndSpec {
  /** only veth pairs are declared in topologies */
  kind?: 'veth';
  peer: VethEndSpec & {
    /** namespace of the peer end (a namespace declared in `namespaces`) */
    netns: string;
  };
}

/**
 * `count` alike namespaces. Names, addresses and route fields are patterns: `{EXPR}` is replaced
 * by an integer expression over `i` (the member number, from `start`), with + - * / % and
 * parentheses, `/` rounding down; `{EXPR:N}` pads with zeros to N digits. Examples, for i=258:
 * `n{i}` -> n258, `10.0.{i/256}.{i%256}/16` -> 10.0.1.2/16, `h{i:4}` -> h0258.
 */
export interface TemplateSpec {
  count: number;
  /** first value of i (default 0) */
  start?: number;
  /** namespace name pattern, e.g. "node-{i}" */
  name: string;
  loopbackUp?: boolean;
  ipv6?: boolean;
  sysctls?: Record<string, string | number | boolean>;
  /** a veth from each member to a bridge in another namespace of the topology */
  uplink?: TemplateUplink;
  /** addresses of the uplink's inside end: patterns, or an address pool */
  addresses?: Array<string | AddressPool>;
  /** routes in each member; `to`, `via` and `src` may be patterns */
  routes?: RouteSpec[];
}

export interface TemplateUplink {
  /** inside end (pattern), e.g. "eth0" */
  name: string;
  /** outside end (pattern), e.g. "veth{i}", enslaved to `bridge` */
  peerName: string;
  /** namespace holding the bridge */
  netns: string;
  /** a bridge declared in that namespace */
  bridge: string;
  mtu?: number;
  /** links.shape() of the member's end (`name`), applied while the members are created */
  shape?: LinkShapeSpec;
  /** links.shape() of the bridge-side end (`peerName`), in `netns` */
  peerShape?: LinkShapeSpec;
}

/** Member k (counting from 0) gets address number `start + k` of the pool, with the pool's prefix length. */
export interface AddressPool {
  /** e.g. "10.0.0.0/16" */
  pool: string;
  /** offset of the first member's address in the pool (default 1) */
  start?: number;
}

/**
 * A NAT rule as netns-kit's NAT API takes it (lib/nat.ts: `nat.masquerade`, `snat`,
 * `portForward`, `service`), with the method name as `kind`.
 */
export type NatRuleSpec =
  | { kind: 'masquerade'; source: string; outInterface?: string; exclude?: string[] }
  | { kind: 'snat'; source: string; to: string; outInterface?: string }
  | {
      kind: 'portForward';
      protocol: 'tcp' | 'udp' | 'sctp';
      port: number | { from: number; to: number };
      hostAddress?: string;
      inInterface?: string;
      to: { address: string; port?: number };
      localhost?: boolean;
    }
  | { kind: 'service'; vip: string; port: number; protocol: 'tcp' | 'udp' | 'sctp'; backends: Array<{ address: string; port: number }> };
