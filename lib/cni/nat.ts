/**
 * ipMasq and the `portMappings` capability through netns-kit's NAT module, in a table of the
 * plugin's own (`inet netns_kit_cni`) in the runtime's namespace. Every rule carries a tag naming
 * its network and attachment, so DEL removes exactly one container's rules and GC can tell which
 * attachments a rule belongs to. Changes from concurrent plugin processes are serialised with a
 * flock, because the NAT module's own ordering only covers calls within one process.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { networkOf, parseCidr } from '../ip';
import type { Netns } from '../netns';
import type { Nat, NatRuleSpec } from '../nat';
import { withFileLock } from './lease-store';
import { CODES, CniError, type CniIpConfig } from './spec';
import type { Attachment, BridgeConf, PortMapping } from './config';

export const NAT_TABLE = 'netns_kit_cni';

function hash(text: string, n: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, n);
}

/** The tag prefix shared by every rule of one network: "cni-" + 8 hex digits of its name. */
export function networkTag(network: string): string {
  return `cni-${hash(network, 8)}-`;
}

/** The tag of one attachment's rules (the spec's key: network, container id, interface). */
export function attachmentTag(network: string, a: Attachment): string {
  return `${networkTag(network)}${hash(`${a.containerID}/${a.ifname}`, 16)}`;
}

/**
 * Where a call's NAT work happens: the runtime's namespace, and the run directory whose lock file
 * serialises plugin processes (NETNS_KIT_CNI_RUN_DIR moves it; tests keep it in a temporary one).
 */
export interface HostSide {
  host: Netns;
  runDir: string;
}

function natOf(host: Netns): Nat {
  return host.natTable(NAT_TABLE);
}

/**
 * Serialises NAT changes across plugin processes (one lock file for the machine: NAT changes are
 * short, and a per-namespace file would be keyed by inode numbers the kernel reuses).
 */
function locked<T>(at: HostSide, fn: () => Promise<T>): Promise<T> {
  return withFileLock(path.join(at.runDir, 'nat.lock'), fn);
}

/** The NAT rules ADD installs for one attachment (what CHECK expects to find). */
export function natSpecs(conf: BridgeConf, ips: CniIpConfig[], tag: string): NatRuleSpec[] {
  const specs: NatRuleSpec[] = [];
  for (const ip of ips) {
    const addr = ip.address.split('/')[0];
    const v6 = addr.includes(':');
    if (conf.ipMasq) {
      // As the reference plugin: masquerade the container's address, except towards its own
      // subnet and multicast.
      specs.push({ kind: 'masquerade', source: v6 ? `${addr}/128` : `${addr}/32`, exclude: [networkCidr(ip.address), v6 ? 'ff00::/8' : '224.0.0.0/4'], tag });
    }
    for (const m of conf.portMappings) specs.push(...forwardSpecs(m, addr, v6, tag));
  }
  return specs;
}

function forwardSpecs(m: PortMapping, addr: string, v6: boolean, tag: string): NatRuleSpec[] {
  if (m.hostIP && m.hostIP.includes(':') !== v6) return []; // a mapping is per family, as portmap does
  const spec: NatRuleSpec = { kind: 'portForward', protocol: m.protocol, port: m.hostPort, to: { address: addr, port: m.containerPort }, tag };
  if (m.hostIP) spec.hostAddress = m.hostIP;
  return [spec];
}

/** "10.88.0.2/16" -> "10.88.0.0/16" */
function networkCidr(cidr: string): string {
  const c = parseCidr(cidr, 'subnet');
  return `${networkOf(c)}/${c.prefix}`;
}

/** Installs the attachment's rules; nothing to do without ipMasq or port mappings. */
export async function setup(at: HostSide, conf: BridgeConf, ips: CniIpConfig[], tag: string): Promise<void> {
  const specs = natSpecs(conf, ips, tag);
  if (!specs.length) return;
  // One read and one transaction for all of them (no forward-chain warnings: a plugin has no one to show them to).
  await locked(at, () => natOf(at.host).addAll(specs));
}

/** Removes the attachment's rules (DEL; none there is fine). */
export async function teardown(at: HostSide, tag: string): Promise<number> {
  return locked(at, () => natOf(at.host).removeTag(tag));
}

/** CHECK: the rules ADD installed are all still there. Returns the drift found. */
export async function verify(at: HostSide, conf: BridgeConf, ips: CniIpConfig[], tag: string): Promise<string[]> {
  const want = natSpecs(conf, ips, tag);
  if (!want.length) return [];
  const have = await natOf(at.host).list({ tag });
  const drift: string[] = [];
  for (const w of want) {
    const found = have.some((h) => h.kind === w.kind && sameTarget(h, w));
    if (!found) drift.push(`NAT rule missing: ${describe(w)}`);
  }
  return drift;
}

function sameTarget(h: NatRuleSpec, w: NatRuleSpec): boolean {
  if (h.kind === 'masquerade' && w.kind === 'masquerade') return h.source === w.source;
  if (h.kind === 'portForward' && w.kind === 'portForward') {
    return h.protocol === w.protocol && JSON.stringify(h.port) === JSON.stringify(w.port) && h.to.address === w.to.address && (h.to.port ?? h.port) === (w.to.port ?? w.port);
  }
  return false;
}

function describe(s: NatRuleSpec): string {
  if (s.kind === 'masquerade') return `masquerade ${s.source}`;
  if (s.kind === 'portForward') return `${s.protocol} ${s.hostAddress ?? '*'}:${JSON.stringify(s.port)} -> ${s.to.address}:${s.to.port}`;
  return s.kind;
}

/** GC: removes the rules of this network's attachments that the runtime no longer lists. */
export async function collect(at: HostSide, network: string, valid: Attachment[]): Promise<string[]> {
  const prefix = networkTag(network);
  const keep = new Set(valid.map((a) => attachmentTag(network, a)));
  return locked(at, async () => {
    const nat = natOf(at.host);
    const tags = new Set((await nat.list()).map((r) => r.tag).filter((t): t is string => typeof t === 'string' && t.startsWith(prefix)));
    const gone = [...tags].filter((t) => !keep.has(t));
    for (const t of gone) await nat.removeTag(t);
    return gone;
  });
}

/** Wraps a NAT failure as the plugin's error. */
export function natError(e: unknown, what: string): CniError {
  if (e instanceof CniError) return e;
  return new CniError(CODES.INTERNAL, `${what}: ${(e as Error).message}`);
}
