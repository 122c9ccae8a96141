/**
 * Where named namespaces live: iproute2's directory of bind mounts (`ip netns add NAME` mounts the
 * namespace on /run/netns/NAME). A module of its own because both the namespace handle (netns.ts)
 * and the link listing (links.ts, which names a veth peer's namespace) need it, and neither may
 * import the other.
 */
import { promises as fs } from 'node:fs';

export const RUN_DIR = '/run/netns';

/** The entries of /run/netns, sorted (ours and iproute2's). Equivalent to: `ip netns list` */
export async function namespaceNames(): Promise<string[]> {
  try {
    return (await fs.readdir(RUN_DIR)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
