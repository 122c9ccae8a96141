// NetworkState and the identity keys: pure functions, no kernel.
import { NetworkState, addressKey, routeKey, type Address, type Route } from '../lib/index';

const addr = (cidr: string, index = 2): Address => {
  const [address, len] = cidr.split('/');
  return { dev: 'br0', index, family: address.includes(':') ? 6 : 4, address, prefixLength: Number(len), cidr, scope: 'global', flags: 128 };
};
const route = (to: string, extra: Partial<Route> = {}): Route => ({ family: 4, to, metric: 0, table: 'main', scope: 'link', protocol: 'kernel', type: 'unicast', dev: 'br0', ...extra });

test('resync replaces, new/change store, delete removes, and applying twice changes nothing', () => {
  const s = new NetworkState();
  s.apply({ type: 'resync', reason: 'initial', addresses: [addr('192.0.2.1/24'), addr('192.0.2.2/24')] });
  s.apply({ type: 'address', action: 'new', address: addr('192.0.2.3/24') });
  s.apply({ type: 'address', action: 'change', address: { ...addr('192.0.2.3/24'), flags: 0 } });
  s.apply({ type: 'address', action: 'delete', address: addr('192.0.2.1/24') });
  s.apply({ type: 'address', action: 'delete', address: addr('192.0.2.1/24') });
  expect([...s.addresses.values()].map((a) => `${a.cidr} ${a.flags}`).sort()).toEqual(['192.0.2.2/24 128', '192.0.2.3/24 0']);
  // A resync of one kind leaves the others alone and replaces its own completely.
  s.apply({ type: 'route', action: 'new', route: route('192.0.2.0/24') });
  s.apply({ type: 'resync', reason: 'overflow', addresses: [addr('198.51.100.1/24')] });
  expect([...s.addresses.keys()]).toEqual([addressKey(addr('198.51.100.1/24'))]);
  expect(s.routes.size).toBe(1);
});

test('route keys follow the kernel: IPv4 by table/prefix/metric, IPv6 also by device', () => {
  expect(routeKey(route('10.0.0.0/8', { dev: 'a' }))).toBe(routeKey(route('10.0.0.0/8', { dev: 'b', via: '192.0.2.9' })));
  expect(routeKey(route('10.0.0.0/8'))).not.toBe(routeKey(route('10.0.0.0/8', { metric: 100 })));
  expect(routeKey(route('10.0.0.0/8'))).not.toBe(routeKey(route('10.0.0.0/8', { table: 100 })));
  const v6 = (dev: string) => route('fe80::/64', { family: 6, metric: 256, dev });
  expect(routeKey(v6('a'))).not.toBe(routeKey(v6('b')));
  expect(addressKey(addr('192.0.2.1/24', 2))).not.toBe(addressKey(addr('192.0.2.1/24', 3)));
});
