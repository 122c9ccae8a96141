/** Neighbour (ARP / NDP) entries of one namespace. */
import { call, invalid, isNotFound } from './errors';
import { AF, familyFromAf, parseAddress, type Family } from './ip';
import { native, type NativeNeigh } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export type NeighborState = 'incomplete' | 'reachable' | 'stale' | 'delay' | 'probe' | 'failed' | 'noarp' | 'permanent' | 'none';

export interface Neighbor {
  dev: string;
  index: number;
  family: Family;
  address: string;
  /** link-layer address; '' while unresolved */
  mac: string;
  state: NeighborState | string;
  /** a proxy ARP/NDP entry (listed with `list({ proxy: true })`) */
  proxy?: boolean;
}

export interface NeighborSpec {
  dev: string;
  address: string;
  /** required unless `proxy` */
  mac?: string;
  /** answer ARP/NDP for `address` on `dev` (proxy ARP / NDP): `ip neigh add proxy ADDRESS dev DEV` */
  proxy?: boolean;
  /** default 'permanent' */
  state?: 'permanent' | 'reachable' | 'stale' | 'noarp';
  /** overwrite an existing entry (`ip neigh replace`) */
  replace?: boolean;
}

const NUD: Record<string, number> = { incomplete: 0x01, reachable: 0x02, stale: 0x04, delay: 0x08, probe: 0x10, failed: 0x20, noarp: 0x40, permanent: 0x80 };

function stateName(bits: number): string {
  for (const [name, bit] of Object.entries(NUD)) if (bits & bit) return name;
  return 'none';
}

/**
 * The addon's neighbour record as the typed Neighbor, shared by list() and the event stream
 * (lib/watch.ts); undefined for entries that are not ARP/NDP (bridge forwarding entries).
 */
export function toNeighbor(n: NativeNeigh, names: ReadonlyMap<number, string>): Neighbor | undefined {
  if (n.family !== AF[4] && n.family !== AF[6]) return undefined;
  return { dev: names.get(n.index) ?? String(n.index), index: n.index, family: familyFromAf(n.family), address: n.address, mac: n.mac, state: stateName(n.state) };
}

export class Neighbors {
  constructor(private readonly ns: Netns) {}

  /**
   * Neighbour entries, optionally of one link. Equivalent to: `ip neigh show [dev DEV]` (the tutorial's `arp`);
   * with `proxy`, the proxy entries instead: `ip neigh show proxy`
   */
  async list(
    filter: { dev?: string; family?: Family; /** include `noarp` entries (multicast), which `ip neigh show` hides */ all?: boolean; /** proxy entries only */ proxy?: boolean } = {},
  ): Promise<Neighbor[]> {
    if (filter.dev !== undefined) validate.ifname(filter.dev);
    const proxy = filter.proxy === undefined ? false : validate.bool(filter.proxy, 'proxy');
    const ctx = { netns: this.ns.label, syscall: 'list neighbors' };
    const [raw, links] = await Promise.all([call(ctx, () => (proxy ? native.neighProxyList(this.ns.ref) : native.neighList(this.ns.ref))), call(ctx, () => native.linkList(this.ns.ref))]);
    const names = new Map(links.map((l) => [l.index, l.name]));
    return raw
      .map((n) => {
        const nb = toNeighbor(n, names);
        if (nb && proxy) {
          nb.proxy = true;
          nb.state = 'permanent';
        }
        return nb;
      })
      .filter(
        (n): n is Neighbor =>
          n !== undefined && (proxy || filter.all === true || n.state !== 'noarp') && (filter.dev === undefined || n.dev === filter.dev) && (filter.family === undefined || n.family === filter.family),
      );
  }

  /**
   * Adds a static entry. Equivalent to: `ip neigh add ADDRESS lladdr MAC dev DEV nud permanent`;
   * with `proxy`: `ip neigh add proxy ADDRESS dev DEV`
   */
  async add(spec: NeighborSpec): Promise<void> {
    const o = validate.object(spec, 'neighbor');
    validate.knownKeys(o, 'neighbor', ['dev', 'address', 'mac', 'state', 'replace', 'proxy']);
    const dev = validate.ifname(o.dev, 'dev');
    const { address, family } = parseAddress(o.address, 'neighbor address');
    const proxy = o.proxy === undefined ? false : validate.bool(o.proxy, 'proxy');
    if (proxy) {
      if (o.mac !== undefined || o.state !== undefined) throw invalid('ERR_NETNS_INVALID_ARG', 'a proxy neighbor takes no "mac" or "state"');
      const replace = o.replace === undefined ? false : validate.bool(o.replace, 'replace');
      await call({ netns: this.ns.label, ifname: dev, syscall: 'add neighbor' }, () => native.neighAdd(this.ns.ref, { dev, address, family: AF[family], proxy: true, replace }));
      return;
    }
    const mac = validate.mac(o.mac);
    const state = o.state === undefined ? 'permanent' : validate.oneOf(o.state, 'state', ['permanent', 'reachable', 'stale', 'noarp']);
    const replace = o.replace === undefined ? false : validate.bool(o.replace, 'replace');
    await call({ netns: this.ns.label, ifname: dev, syscall: 'add neighbor' }, () =>
      native.neighAdd(this.ns.ref, { dev, address, family: AF[family], mac, state: NUD[state], replace }),
    );
  }

  /** Removes an entry. Equivalent to: `ip neigh del [proxy] ADDRESS dev DEV` */
  async delete(spec: { dev: string; address: string; proxy?: boolean }, options: { missingOk?: boolean } = {}): Promise<void> {
    const o = validate.object(spec, 'neighbor');
    const dev = validate.ifname(o.dev, 'dev');
    const { address, family } = parseAddress(o.address, 'neighbor address');
    const proxy = o.proxy === undefined ? false : validate.bool(o.proxy, 'proxy');
    try {
      await call({ netns: this.ns.label, ifname: dev, syscall: 'delete neighbor' }, () => native.neighDelete(this.ns.ref, { dev, address, family: AF[family], proxy }));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }
}
