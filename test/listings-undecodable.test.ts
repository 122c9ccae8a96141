// Listings lose nothing (issue 12, item 3): a route whose encapsulation libnl 3.7 cannot decode
// (seg6, and the lwt "ip" tunnel; libnl reads only MPLS) is still listed, by routes.list(), by a
// watch's initial dump and events, and in NetworkState, with what could be read and its encap type
// read from RTA_ENCAP_TYPE. `ip -j route show table all` is the witness.
import { NetworkState, routeKey, type NetworkEvent, type Netns, type Route } from '../lib/index';
import { Sandbox, ifName, ip, ipJson } from './support/sandbox';

const sb = new Sandbox();
afterEach(() => sb.cleanup());

/** A namespace with a veth pair (both ends here, up) to hang encapsulated routes on. */
async function withVeth(tag: string): Promise<{ ns: Netns; dev: string }> {
  const ns = await sb.ns(tag, { loopbackUp: true });
  const dev = ifName('v');
  await ns.links.add({ kind: 'veth', name: dev, up: true, peer: { name: ifName('p'), up: true } });
  return { ns, dev };
}

function encapRoutes(ns: Netns, dev: string): void {
  ip('-n', ns.name!, 'route', 'add', '10.63.0.0/16', 'encap', 'seg6', 'mode', 'encap', 'segs', 'fd00::1', 'dev', dev);
  ip('-n', ns.name!, 'route', 'add', '10.64.0.0/16', 'encap', 'ip', 'id', '5', 'dst', '192.0.2.9', 'dev', dev, 'table', '100');
  ip('-n', ns.name!, '-6', 'route', 'add', '2001:db8:63::/64', 'encap', 'seg6', 'mode', 'inline', 'segs', 'fd00::2', 'dev', dev);
}

function summary(r: Route | undefined): unknown {
  return r && { to: r.to, table: r.table, dev: r.dev, encap: r.encap };
}

describe('routes libnl cannot decode', () => {
  test('are listed with their encap type, and the count matches ip route show table all', async () => {
    const { ns, dev } = await withVeth('encap');
    encapRoutes(ns, dev);
    const ours = await ns.routes.list({ table: 'all' });
    expect(summary(ours.find((r) => r.to === '10.63.0.0/16'))).toEqual({ to: '10.63.0.0/16', table: 'main', dev, encap: { type: 'seg6' } });
    expect(summary(ours.find((r) => r.to === '10.64.0.0/16'))).toEqual({ to: '10.64.0.0/16', table: 100, dev, encap: { type: 'ip' } });
    expect(summary(ours.find((r) => r.to === '2001:db8:63::/64'))).toEqual({ to: '2001:db8:63::/64', table: 'main', dev, encap: { type: 'seg6' } });
    // Routes without an encapsulation say so by leaving the field out.
    expect(ours.filter((r) => r.encap).map((r) => r.to).sort()).toEqual(['10.63.0.0/16', '10.64.0.0/16', '2001:db8:63::/64']);

    // The witness: every table (local and broadcast included) of both families. IPv6 adds the
    // veth's link-local address (and its local route) from a work queue, some time after the link
    // came up, so the counts are compared once the witness saw the same set before and after ours.
    const witness = () => ({
      v4: ipJson<Array<{ dst: string; encap?: string }>>(ns, '-4', 'route', 'show', 'table', 'all'),
      v6: ipJson<Array<{ dst: string; encap?: string }>>(ns, '-6', 'route', 'show', 'table', 'all'),
    });
    let before = witness();
    let listed = ours;
    for (let attempt = 0; attempt < 50; attempt++) {
      listed = await ns.routes.list({ table: 'all' });
      const after = witness();
      if (JSON.stringify(after) === JSON.stringify(before)) break;
      before = after;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(before.v4.find((r) => r.dst === '10.63.0.0/16')?.encap).toBe('seg6');
    expect(listed.filter((r) => r.family === 4).length).toBe(before.v4.length);
    expect(listed.filter((r) => r.family === 6).length).toBe(before.v6.length);

    // The main table alone (the default filter) and a single table keep them too.
    expect((await ns.routes.list()).map((r) => r.to)).toEqual(expect.arrayContaining(['10.63.0.0/16', '2001:db8:63::/64']));
    expect((await ns.routes.list({ table: 100 })).map((r) => r.to)).toEqual(['10.64.0.0/16']);

    // Deleting one by our API works like any other route.
    await ns.routes.delete({ to: '10.63.0.0/16', dev });
    expect(ipJson<Array<{ dst: string }>>(ns, 'route', 'show', '10.63.0.0/16')).toEqual([]);
  });

  test('reach watch() events, its initial dump and NetworkState', async () => {
    const { ns, dev } = await withVeth('encapw');
    ip('-n', ns.name!, 'route', 'add', '10.65.0.0/16', 'encap', 'seg6', 'mode', 'encap', 'segs', 'fd00::5', 'dev', dev);
    const w = ns.watch({ routes: true, initial: true });
    const state = new NetworkState();
    const events: NetworkEvent[] = [];
    let wake = () => {};
    const reader = (async () => {
      for await (const e of w) {
        events.push(e);
        state.apply(e);
        wake();
      }
    })();
    const waitFor = async (pred: (e: NetworkEvent) => boolean) => {
      while (!events.some(pred)) await new Promise<void>((r) => (wake = r));
    };
    try {
      await w.ready;
      await waitFor((e) => e.type === 'resync');
      const initial = events.find((e) => e.type === 'resync');
      expect(initial?.type === 'resync' && summary(initial.routes?.find((r) => r.to === '10.65.0.0/16'))).toEqual({
        to: '10.65.0.0/16', table: 'main', dev, encap: { type: 'seg6' },
      });

      encapRoutes(ns, dev);
      await waitFor((e) => e.type === 'route' && e.route.to === '2001:db8:63::/64');
      const added = events.filter((e) => e.type === 'route' && e.action === 'new').map((e) => e.type === 'route' && summary(e.route));
      expect(added).toEqual(expect.arrayContaining([
        { to: '10.63.0.0/16', table: 'main', dev, encap: { type: 'seg6' } },
        { to: '10.64.0.0/16', table: 100, dev, encap: { type: 'ip' } },
        { to: '2001:db8:63::/64', table: 'main', dev, encap: { type: 'seg6' } },
      ]));

      ip('-n', ns.name!, 'route', 'del', '10.65.0.0/16');
      await waitFor((e) => e.type === 'route' && e.action === 'delete' && e.route.to === '10.65.0.0/16');
      // NetworkState holds exactly what the list call shows.
      const listed = await ns.routes.list({ table: 'all' });
      expect([...state.routes.keys()].sort()).toEqual(listed.map(routeKey).sort());
      expect(state.routes.get(routeKey(listed.find((r) => r.to === '10.64.0.0/16')!))?.encap).toEqual({ type: 'ip' });
    } finally {
      await w.close();
      await reader;
    }
  });
});
