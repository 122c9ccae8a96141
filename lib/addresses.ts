/** IPv4 and IPv6 addresses of one namespace's links. */
import { call, isNotFound } from './errors';
import { AF, familyFromAf, parseCidr, type Family } from './ip';
import { native, type NativeAddr, type NativeAddrChange } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export interface AddressOptions {
  /** IPv6: skip duplicate address detection, so the address is usable at once (`nodad`) */
  noDad?: boolean;
  /** IPv4 broadcast address (`broadcast`) */
  broadcast?: string;
  /** IPv4 label, e.g. "eth0:1" (`label`) */
  label?: string;
  /** replace an existing address instead of failing with EEXIST (`ip addr replace`) */
  replace?: boolean;
}

export interface Address {
  dev: string;
  index: number;
  family: Family;
  /** "192.168.15.1" */
  address: string;
  prefixLength: number;
  /** "192.168.15.1/24" */
  cidr: string;
  scope: 'global' | 'site' | 'link' | 'host' | 'nowhere' | number;
  /** raw IFA_F_* flags */
  flags: number;
  label?: string;
  broadcast?: string;
}

const SCOPES: Record<number, Address['scope']> = { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' };

/** The addon's address record as the typed Address, shared by list() and the event stream (lib/watch.ts). */
export function toAddress(a: NativeAddr, names: ReadonlyMap<number, string>): Address {
  const dev = names.get(a.index) ?? String(a.index);
  const addr: Address = {
    dev,
    index: a.index,
    family: familyFromAf(a.family),
    address: a.address,
    prefixLength: a.prefixlen,
    cidr: `${a.address}/${a.prefixlen}`,
    scope: SCOPES[a.scope] ?? a.scope,
    flags: a.flags,
  };
  if (a.label && a.label !== dev) addr.label = a.label;
  if (a.broadcast) addr.broadcast = a.broadcast;
  return addr;
}

export interface AddressFilter {
  dev?: string;
  family?: Family;
}

export class Addresses {
  constructor(private readonly ns: Netns) {}

  private change(dev: string, cidr: string, options: AddressOptions): NativeAddrChange {
    validate.ifname(dev);
    const o = validate.object(options, 'address options');
    validate.knownKeys(o, 'address options', ['noDad', 'broadcast', 'label', 'replace']);
    const c = parseCidr(cidr, 'address');
    const change: NativeAddrChange = { dev, address: c.address, prefixlen: c.prefix, family: AF[c.family] };
    if (options.noDad !== undefined) change.noDad = validate.bool(options.noDad, 'noDad');
    if (options.replace !== undefined) change.replace = validate.bool(options.replace, 'replace');
    if (options.broadcast !== undefined) change.broadcast = parseCidr(options.broadcast, 'broadcast', { family: c.family, prefixRequired: false }).address;
    if (options.label !== undefined) change.label = validate.addressLabel(options.label, dev);
    return change;
  }

  /** Adds an address. Equivalent to: `ip addr add CIDR dev DEV` */
  async add(dev: string, cidr: string, options: AddressOptions = {}): Promise<void> {
    const change = this.change(dev, cidr, options);
    await call({ netns: this.ns.label, ifname: dev, syscall: 'add address' }, () => native.addrAdd(this.ns.ref, change));
  }

  /** Removes an address. Equivalent to: `ip addr del CIDR dev DEV` */
  async delete(dev: string, cidr: string, options: { missingOk?: boolean } = {}): Promise<void> {
    const change = this.change(dev, cidr, {});
    try {
      await call({ netns: this.ns.label, ifname: dev, syscall: 'delete address' }, () => native.addrDelete(this.ns.ref, change));
    } catch (e) {
      if (options.missingOk && isNotFound(e)) return;
      throw e;
    }
  }

  /** Addresses, optionally of one link or family. Equivalent to: `ip [-4|-6] addr show [dev DEV]` */
  async list(filter: AddressFilter = {}): Promise<Address[]> {
    if (filter.dev !== undefined) validate.ifname(filter.dev);
    if (filter.family !== undefined && filter.family !== 4 && filter.family !== 6) validate.oneOf(String(filter.family), 'family', ['4', '6']);
    const ctx = { netns: this.ns.label, syscall: 'list addresses' };
    const [raw, links] = await Promise.all([
      call(ctx, () => native.addrList(this.ns.ref, filter.family ? AF[filter.family] : 0)),
      call(ctx, () => native.linkList(this.ns.ref)),
    ]);
    const names = new Map(links.map((l) => [l.index, l.name]));
    return raw.map((a) => toAddress(a, names)).filter((a) => filter.dev === undefined || a.dev === filter.dev);
  }

  /** Removes every address (of one link and/or family). Equivalent to: `ip [-4|-6] addr flush [dev DEV]` */
  async flush(filter: AddressFilter = {}): Promise<number> {
    const all = await this.list(filter);
    // Deleting a primary IPv4 address also deletes its secondaries: already-gone is fine here.
    for (const a of all) await this.delete(a.dev, a.cidr, { missingOk: true });
    return all.length;
  }
}
