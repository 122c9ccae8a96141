/**
 * Isolation between networks on one host (`"ingressPolicy": "same-bridge"`), through netns-kit's
 * firewall module in a table of the plugin's own (`inet netns_kit_cni_fw`) in the runtime's
 * namespace. The model is the reference `firewall` plugin's ingressPolicy "same-bridge" (its
 * CNI-ISOLATION-STAGE-1/2 chains) and netavark's `isolate`: traffic routed from one isolated
 * network's bridge to another's is dropped; traffic within a bridge, to and from the uplink, and
 * replies (established/related, the firewall's first rule) pass.
 *
 * Rules, all tagged `cni-isolation`:
 *   allow forward iif B oif B    one per isolated bridge: records that B is isolated (and says what passes)
 *   deny  forward iif B oif O    for every pair of isolated bridges B != O, both ways
 * They belong to the bridge, not to a container: DEL leaves them (as the reference's isolation
 * chains), and they drop nothing once the other bridge is gone.
 *
 * Equivalent to: `nft add rule inet netns_kit_cni_fw forward iifname B oifname O drop` per pair.
 */
import path from 'node:path';
import type { Netns } from '../netns';
import type { Firewall } from '../firewall';
import { withFileLock } from './lease-store';
import type { HostSide } from './nat';

export const FIREWALL_TABLE = 'netns_kit_cni_fw';
const TAG = 'cni-isolation';

function firewallOf(host: Netns): Firewall {
  // The plugin never changes br_netfilter on the runtime's host: traffic between two bridges is
  // routed, so the forward hook sees it either way.
  return host.firewallTable(FIREWALL_TABLE, { bridgeNetfilter: 'keep' });
}

/** Serialises changes across plugin processes (the firewall module orders calls within one process only). */
function locked<T>(at: HostSide, fn: () => Promise<T>): Promise<T> {
  return withFileLock(path.join(at.runDir, 'firewall.lock'), fn);
}

/** Bridges recorded as isolated (by their `allow iif B oif B` rule). */
async function isolatedBridges(fw: Firewall): Promise<string[]> {
  return (await fw.list({ tag: TAG })).filter((r) => r.action === 'allow' && r.iif !== undefined && r.iif === r.oif).map((r) => r.iif!);
}

/** Marks `bridge` isolated and drops forwarding between it and every other isolated bridge. Idempotent. */
export async function isolate(at: HostSide, bridge: string): Promise<void> {
  await locked(at, async () => {
    const fw = firewallOf(at.host);
    const others = (await isolatedBridges(fw)).filter((b) => b !== bridge);
    await fw.allow({ chain: 'forward', iif: bridge, oif: bridge, tag: TAG });
    for (const o of others) {
      await fw.deny({ chain: 'forward', iif: bridge, oif: o, tag: TAG });
      await fw.deny({ chain: 'forward', iif: o, oif: bridge, tag: TAG });
    }
  });
}

/** CHECK: what is missing of `isolate(bridge)`, as drift messages. */
export async function verify(host: Netns, bridge: string): Promise<string[]> {
  const rules = await firewallOf(host).list({ tag: TAG });
  const has = (action: string, iif: string, oif: string) => rules.some((r) => r.action === action && r.iif === iif && r.oif === oif);
  if (!has('allow', bridge, bridge)) return [`bridge ${bridge} is not marked isolated in table inet ${FIREWALL_TABLE}`];
  const drift: string[] = [];
  for (const o of await isolatedBridges(firewallOf(host))) {
    if (o === bridge) continue;
    if (!has('deny', bridge, o) || !has('deny', o, bridge)) drift.push(`forwarding between ${bridge} and ${o} is not dropped`);
  }
  return drift;
}
