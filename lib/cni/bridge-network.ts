/**
 * The bridge network, as the reference `bridge` plugin builds it: a Linux bridge in the runtime's
 * namespace, a veth pair whose container end (CNI_IFNAME) is created directly inside the
 * container's namespace, addresses and routes from IPAM, the gateway address on the bridge, and
 * NAT (ipMasq, portMappings) through netns-kit's NAT module.
 *
 * Equivalent to, in the runtime's namespace:
 *   ip link add cni0 type bridge && ip link set cni0 up
 *   ip link add vethXXXX master cni0 up type veth peer name eth0 netns CONTAINER
 *   ip -n CONTAINER addr add 10.88.0.2/16 dev eth0; ip -n CONTAINER route add default via 10.88.0.1
 *   ip addr add 10.88.0.1/16 dev cni0; sysctl -w net.ipv4.ip_forward=1
 */
import { createHash } from 'node:crypto';
import { NetnsError } from '../errors';
import { networkOf, parseCidr, offset } from '../ip';
import { randomLocalMac, type Link } from '../links';
import { open, type Netns } from '../netns';
import { ipam, ipamPreflight } from './ipam';
import * as cniNat from './nat';
import * as cniFirewall from './firewall';
import { CODES, CniError, type CniEnv, type CniInterface, type CniIpConfig, type CniResult, type CniRoute } from './spec';
import type { BridgeConf } from './config';

/** The host end's name: "veth" + 8 hex digits of (network, container, ifname), so DEL finds it without the container. */
export function hostVethName(conf: BridgeConf, env: Pick<CniEnv, 'containerId' | 'ifname'>): string {
  return `veth${createHash('sha256').update(`${conf.name}/${env.containerId}/${env.ifname}`).digest('hex').slice(0, 8)}`;
}

function tagOf(conf: BridgeConf, env: CniEnv): string {
  return cniNat.attachmentTag(conf.name, { containerID: env.containerId, ifname: env.ifname });
}

/** Any failure of a kernel call becomes the plugin-specific error (999), as the reference reports them. */
function internal(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  return new CniError(CODES.INTERNAL, `${what}: ${(e as Error).message}`);
}

function notFound(e: unknown): boolean {
  return e instanceof NetnsError && (e.code === 'ENOENT' || e.code === 'ENODEV');
}

/** Opens CNI_NETNS; code 3 (container unknown) when it is not a live namespace. */
async function openContainer(path: string): Promise<Netns> {
  try {
    return await open({ path });
  } catch (e) {
    throw new CniError(CODES.UNKNOWN_CONTAINER, `failed to open netns "${path}"`, (e as Error).message);
  }
}

/**
 * One link by name (no peer-namespace naming: the plugin does not need it, and naming it would ask
 * the kernel about every entry of /run/netns). ENOENT when missing.
 * Equivalent to: `ip -d link show dev NAME`
 */
function getLink(ns: Netns, name: string): Promise<Link> {
  return ns.links.get(name, { peerCandidates: [] });
}

async function linkExists(ns: Netns, name: string): Promise<boolean> {
  try {
    await getLink(ns, name);
    return true;
  } catch (e) {
    if (notFound(e)) return false;
    throw e;
  }
}

/**
 * Creates the bridge if missing (another ADD may be creating it at the same moment), with a MAC of
 * its own set at creation, as the reference plugin does: left to the kernel, the bridge would take
 * its lowest port's MAC and the gateway's MAC would change as containers come and go (containers
 * then send to a stale one until their neighbour entries expire).
 * Equivalent to: `ip link add NAME address 02:xx:.. type bridge; ip link set NAME up`
 */
async function ensureBridge(host: Netns, conf: BridgeConf): Promise<void> {
  // Looked up first: after the first ADD the bridge is there, and one look-up is all it costs.
  let l = await getLink(host, conf.bridge).catch((e: unknown) => {
    if (notFound(e)) return undefined;
    throw internal(e, `failed to look up bridge "${conf.bridge}"`);
  });
  if (!l) {
    try {
      await host.links.add({ kind: 'bridge', name: conf.bridge, up: true, mac: randomLocalMac(), ...(conf.mtu ? { mtu: conf.mtu } : {}) });
    } catch (e) {
      if (!(e instanceof NetnsError && e.code === 'EEXIST')) throw internal(e, `failed to create bridge "${conf.bridge}"`);
      l = await getLink(host, conf.bridge); // another ADD made it meanwhile
    }
  }
  if (l) {
    if (l.kind !== 'bridge') throw new CniError(CODES.INTERNAL, `${conf.bridge} already exists but is not a bridge`);
    if (!l.up) await host.links.set(conf.bridge, { up: true });
  }
  // Equivalent to: `ip link set NAME promisc on`
  if (conf.promiscMode) await host.links.set(conf.bridge, { promisc: true });
}

/** The gateway of an IP config: IPAM's, or (as the reference, when isGateway) the subnet's first address. */
function gatewayOf(ip: CniIpConfig, conf: BridgeConf): string | undefined {
  if (ip.gateway) return ip.gateway;
  if (!conf.isGateway) return undefined;
  const c = parseCidr(ip.address, 'address');
  return offset(networkOf(c), 1);
}

const isV6 = (a: string) => a.includes(':');
const isDefault = (dst: string) => dst === '0.0.0.0/0' || dst === '::/0';

/** Routes for the container: IPAM's, plus a default route per family via the gateway when isDefaultGateway. */
function containerRoutes(ipamResult: CniResult, conf: BridgeConf, ips: CniIpConfig[]): CniRoute[] {
  const routes = [...(ipamResult.routes ?? [])];
  if (conf.isDefaultGateway) {
    for (const ip of ips) {
      const gw = gatewayOf(ip, conf);
      const fam6 = isV6(ip.address);
      if (!gw || routes.some((r) => isDefault(r.dst) && isV6(r.dst) === fam6)) continue;
      routes.push({ dst: fam6 ? '::/0' : '0.0.0.0/0', gw });
    }
  }
  return routes;
}

/** Assigns `gw/prefix` to the bridge; another address of that subnet is an error unless forceAddress. */
async function bridgeGateway(host: Netns, conf: BridgeConf, gw: string, ip: CniIpConfig): Promise<void> {
  const subnet = parseCidr(ip.address, 'address');
  const want = `${gw}/${subnet.prefix}`;
  const have = await host.addresses.list({ dev: conf.bridge, family: subnet.family });
  if (have.some((a) => a.address === parseCidr(want, 'gateway').address && a.prefixLength === subnet.prefix)) return;
  const clash = have.filter((a) => a.scope === 'global' && networkOf({ address: a.address, prefix: subnet.prefix, family: subnet.family }) === networkOf(subnet));
  for (const c of clash) {
    if (!conf.forceAddress) {
      throw new CniError(CODES.INTERNAL, `"${conf.bridge}" already has an IP address different from ${want}`, `found ${c.cidr}; set "forceAddress" to replace it`);
    }
    await host.addresses.delete(conf.bridge, c.cidr, { missingOk: true });
  }
  try {
    // Equivalent to: `ip addr add GW/PREFIX dev BRIDGE`
    await host.addresses.add(conf.bridge, want, { noDad: subnet.family === 6 });
  } catch (e) {
    if (!(e instanceof NetnsError && e.code === 'EEXIST')) throw e; // a concurrent ADD got there first
  }
}

/** ADD: connects the container and returns the Result (1.x layout). */
export async function add(conf: BridgeConf, env: CniEnv): Promise<CniResult> {
  const host = env.host;
  const container = await openContainer(env.netns);
  if (await linkExists(container, env.ifname)) {
    throw new CniError(CODES.INTERNAL, `container veth name provided (${env.ifname}) already exists`);
  }
  await ipamPreflight(conf, env);
  await ensureBridge(host, conf);
  const ipamResult = await ipam('ADD', conf, env);
  if (!ipamResult) throw new CniError(CODES.INTERNAL, 'IPAM returned no result');
  const hostVeth = hostVethName(conf, env);
  const tag = tagOf(conf, env);
  try {
    const mtu = conf.mtu ? { mtu: conf.mtu } : {};
    // Equivalent to: `ip link add VETH mtu M master BR up type veth peer name IFNAME mtu M address MAC netns CONTAINER`
    await host.links.add({
      kind: 'veth',
      name: hostVeth,
      master: conf.bridge,
      up: true,
      ...mtu,
      peer: { name: env.ifname, netns: container, up: true, ...mtu, ...(conf.mac ? { mac: conf.mac } : {}) },
    });
    // Equivalent to: `ip link set VETH type bridge_slave [hairpin on] [isolated on]` (one message)
    if (conf.hairpinMode || conf.portIsolation) {
      await host.links.set(hostVeth, { ...(conf.hairpinMode ? { hairpin: true } : {}), ...(conf.portIsolation ? { isolated: true } : {}) });
    }

    const ips: CniIpConfig[] = (ipamResult.ips ?? []).map((ip) => ({ ...ip, interface: 2 }));
    for (const ip of ips) {
      if (conf.isGateway && !ip.gateway) ip.gateway = gatewayOf(ip, conf);
      // Equivalent to: `ip -n CONTAINER addr add ADDR dev IFNAME` (IPv6 without DAD unless enabledad)
      await container.addresses.add(env.ifname, ip.address, { noDad: isV6(ip.address) && !conf.enabledad });
    }
    const routes = containerRoutes(ipamResult, conf, ips);
    for (const r of routes) {
      const fam6 = isV6(r.dst);
      const gw = r.gw ?? ips.find((ip) => isV6(ip.address) === fam6 && ip.gateway)?.gateway;
      // Equivalent to: `ip -n CONTAINER route add DST [via GW] dev IFNAME`
      await container.routes.add({ to: isDefault(r.dst) ? 'default' : r.dst, ...(gw ? { via: gw } : {}), dev: env.ifname, family: fam6 ? 6 : 4 });
    }
    if (conf.isGateway) {
      for (const ip of ips) {
        if (ip.gateway) await bridgeGateway(host, conf, ip.gateway, ip);
      }
      // Equivalent to: `sysctl -w net.ipv4.ip_forward=1` / `net.ipv6.conf.all.forwarding=1`
      if (ips.some((ip) => !isV6(ip.address))) await host.sysctl.set('net.ipv4.ip_forward', 1);
      if (ips.some((ip) => isV6(ip.address))) await host.sysctl.set('net.ipv6.conf.all.forwarding', 1);
    }
    await cniNat.setup(env, conf, ips, tag).catch((e) => {
      throw cniNat.natError(e, 'failed to set up NAT');
    });
    if (conf.ingressPolicy === 'same-bridge') await cniFirewall.isolate(env, conf.bridge);

    const [br, hv, cv] = await Promise.all([getLink(host, conf.bridge), getLink(host, hostVeth), getLink(container, env.ifname)]);
    const interfaces: CniInterface[] = [
      { name: br.name, mac: br.mac },
      { name: hv.name, mac: hv.mac },
      { name: cv.name, mac: cv.mac, sandbox: env.netns },
    ];
    if (conf.mtu) interfaces.forEach((i) => (i.mtu = conf.mtu));
    const result: CniResult = { cniVersion: conf.cniVersion, interfaces, ips };
    if (routes.length) result.routes = routes;
    // As the reference plugin: the network configuration's dns is what the result carries.
    if (conf.dns) result.dns = conf.dns;
    else if (ipamResult.dns) result.dns = ipamResult.dns;
    return result;
  } catch (e) {
    // Undo in reverse: NAT, the veth (takes the container end with it), the address lease.
    await cniNat.teardown(env, tag).catch(() => undefined);
    await host.links.delete(hostVeth, { missingOk: true }).catch(() => undefined);
    await ipam('DEL', conf, env).catch(() => undefined);
    throw internal(e, 'ADD failed');
  }
}

/**
 * DEL: releases everything of (network, container, ifname). Missing pieces are fine, and a step
 * that fails does not stop the others: the first failure is reported after all were tried.
 */
export async function del(conf: BridgeConf, env: CniEnv): Promise<void> {
  const host = env.host;
  const errors: CniError[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      errors.push(internal(e, what));
    }
  };
  // The address first, as the reference plugin does: it must be released even if all else is gone.
  await attempt('failed to release the address', () => ipam('DEL', conf, env));
  if (env.netns) {
    let container: Netns | undefined;
    try {
      container = await open({ path: env.netns });
    } catch {
      container = undefined; // the namespace is gone, and its veth end with it
    }
    if (container) {
      const c = container;
      await attempt(`failed to delete ${env.ifname}`, async () => {
        try {
          const l = await getLink(c, env.ifname);
          // Only a veth: never delete an interface some other plugin put there under that name.
          // Equivalent to: `ip -n CONTAINER link del IFNAME`
          if (l.kind === 'veth') await c.links.delete(env.ifname, { missingOk: true });
        } catch (e) {
          if (!notFound(e)) throw e;
        }
      });
    }
  }
  // Equivalent to: `ip link del VETH` (gone already if the container end was deleted)
  await attempt('failed to delete host veth', () => host.links.delete(hostVethName(conf, env), { missingOk: true }));
  await attempt('failed to remove NAT rules', () => cniNat.teardown(env, tagOf(conf, env)));
  if (errors.length) throw errors[0];
}

/** CHECK: verifies what ADD set up against prevResult; every drift found is reported in one error. */
export async function check(conf: BridgeConf, env: CniEnv): Promise<void> {
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'Required prevResult missing');
  await ipam('CHECK', conf, env);
  const host = env.host;
  const container = await openContainer(env.netns);
  const drift: string[] = [];
  const ifaces = prev.interfaces ?? [];
  const cIndex = ifaces.findIndex((i) => i.sandbox && i.name === env.ifname);
  if (cIndex < 0) throw new CniError(CODES.INTERNAL, `prevResult has no interface ${env.ifname} in a sandbox`);
  const cPrev = ifaces[cIndex];
  try {
    const l = await getLink(container, env.ifname);
    if (l.kind !== 'veth') drift.push(`${env.ifname} is a ${l.kind}, not a veth`);
    if (cPrev.mac && l.mac.toLowerCase() !== cPrev.mac.toLowerCase()) drift.push(`${env.ifname} has MAC ${l.mac}, expected ${cPrev.mac}`);
    if (!l.up) drift.push(`${env.ifname} is down`);
    if (conf.mtu && l.mtu !== conf.mtu) drift.push(`${env.ifname} has MTU ${l.mtu}, expected ${conf.mtu}`);
  } catch (e) {
    if (!notFound(e)) throw internal(e, 'CHECK failed');
    drift.push(`container interface ${env.ifname} is missing`);
  }
  const ips = (prev.ips ?? []).filter((ip) => ip.interface === undefined || ip.interface === cIndex);
  if (!drift.some((d) => d.includes('missing'))) {
    const have = await container.addresses.list({ dev: env.ifname });
    for (const ip of ips) {
      const c = parseCidr(ip.address, 'address');
      if (!have.some((a) => a.address === c.address && a.prefixLength === c.prefix)) drift.push(`address ${ip.address} missing on ${env.ifname}`);
    }
    const routes = await container.routes.list({ dev: env.ifname });
    for (const r of prev.routes ?? []) {
      const fam6 = isV6(r.dst);
      const to = isDefault(r.dst) ? 'default' : `${networkOf(parseCidr(r.dst, 'route'))}/${parseCidr(r.dst, 'route').prefix}`;
      const gw = r.gw ?? ips.find((ip) => isV6(ip.address) === fam6)?.gateway;
      const found = routes.some((x) => x.to === to && (x.family === 6) === fam6 && (!gw || x.via === parseCidr(gw, 'gw', { prefixRequired: false }).address));
      if (!found) drift.push(`route ${r.dst}${gw ? ` via ${gw}` : ''} missing in the container`);
    }
  }
  const hostVeth = ifaces.find((i, n) => n !== cIndex && !i.sandbox && i.name !== conf.bridge)?.name ?? hostVethName(conf, env);
  try {
    const [hv, br] = await Promise.all([getLink(host, hostVeth), getLink(host, conf.bridge).catch(() => undefined)]);
    if (!br || hv.masterIndex !== br.index) drift.push(`host veth ${hostVeth} is not attached to ${conf.bridge}`);
    if (!hv.up) drift.push(`host veth ${hostVeth} is down`);
  } catch (e) {
    if (!notFound(e)) throw internal(e, 'CHECK failed');
    drift.push(`host veth ${hostVeth} is missing`);
  }
  try {
    const br = await getLink(host, conf.bridge);
    if (br.kind !== 'bridge') drift.push(`${conf.bridge} is not a bridge`);
    if (conf.isGateway) {
      const have = await host.addresses.list({ dev: conf.bridge });
      for (const ip of ips) {
        if (ip.gateway && !have.some((a) => a.address === parseCidr(ip.gateway!, 'gateway', { prefixRequired: false }).address)) {
          drift.push(`gateway ${ip.gateway} missing on ${conf.bridge}`);
        }
      }
    }
  } catch (e) {
    if (!notFound(e)) throw internal(e, 'CHECK failed');
    drift.push(`bridge ${conf.bridge} is missing`);
  }
  drift.push(...(await cniNat.verify(env, conf, ips, tagOf(conf, env)).catch((e) => [`cannot read NAT rules: ${(e as Error).message}`])));
  if (conf.ingressPolicy === 'same-bridge') drift.push(...(await cniFirewall.verify(host, conf.bridge).catch((e) => [`cannot read firewall rules: ${(e as Error).message}`])));
  if (drift.length) throw new CniError(CODES.INTERNAL, `CHECK found drift: ${drift[0]}`, drift.join('; '));
}

/** GC (1.1.0): releases leases and NAT rules of attachments not in cni.dev/valid-attachments. */
export async function gc(conf: BridgeConf, env: CniEnv): Promise<void> {
  const valid = conf.validAttachments ?? [];
  const errors: string[] = [];
  await ipam('GC', conf, env).catch((e) => errors.push((e as Error).message));
  await cniNat.collect(env, conf.name, valid).catch((e) => errors.push((e as Error).message));
  if (errors.length) throw new CniError(CODES.INTERNAL, `GC incomplete: ${errors[0]}`, errors.join('; '));
}

/** STATUS (1.1.0): ready when the runtime's namespace answers and IPAM is ready. */
export async function status(conf: BridgeConf, env: CniEnv): Promise<void> {
  try {
    await env.host.links.get('lo');
  } catch (e) {
    throw new CniError(CODES.NOT_AVAILABLE, 'cannot talk to the kernel (rtnetlink)', (e as Error).message);
  }
  await ipam('STATUS', conf, env);
}
