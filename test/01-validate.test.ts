// Validators: every refused input gets its documented ERR_NETNS_* code. Pure functions; the
// API-level tests that the kernel is never reached are in 02/03/04.
import * as validate from '../lib/validate';
import { parseAddress, parseCidr, canonical, networkOf, offset, contains } from '../lib/ip';
import { toNativeRoute } from '../lib/routes';
import { toNativeAdd } from '../lib/links';
import { NetnsError } from '../lib/errors';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NetnsError);
    return (e as NetnsError).code;
  }
  return undefined;
}

describe('interface names', () => {
  test.each([
    ['', 'empty'],
    ['a'.repeat(16), '16 bytes'],
    ['é'.repeat(8), '8 characters but 16 bytes'],
    ['a/b', 'slash'],
    ['a:b', 'colon'],
    ['a b', 'space'],
    ['a\tb', 'tab'],
    ['eth%d', 'percent'],
    ['.', 'dot'],
    ['..', 'dot dot'],
  ])('refuses %j (%s)', (name) => {
    expect(code(() => validate.ifname(name))).toBe('ERR_NETNS_INVALID_IFNAME');
  });
  test('accepts 15 bytes, including multi-byte characters', () => {
    expect(validate.ifname('a'.repeat(15))).toBe('a'.repeat(15));
    expect(validate.ifname('é'.repeat(7) + 'a')).toBe('é'.repeat(7) + 'a');
    expect(validate.ifname('veth-red-br')).toBe('veth-red-br');
  });
  test('refuses non-strings', () => {
    expect(code(() => validate.ifname(42))).toBe('ERR_NETNS_INVALID_IFNAME');
    expect(code(() => validate.ifname(undefined))).toBe('ERR_NETNS_INVALID_IFNAME');
  });
});

describe('namespace names', () => {
  test.each(['', '.', '..', 'a/b', '../../etc/passwd', 'x'.repeat(256), 'a\0b'])('refuses %j', (name) => {
    expect(code(() => validate.netnsName(name))).toBe('ERR_NETNS_INVALID_NAME');
  });
  test('accepts 255 bytes and names iproute2 accepts', () => {
    expect(validate.netnsName('x'.repeat(255))).toHaveLength(255);
    expect(validate.netnsName('red')).toBe('red');
    expect(validate.netnsName('cni-1234-abcd')).toBe('cni-1234-abcd');
  });
});

describe('addresses and prefixes', () => {
  test('parses and canonicalises', () => {
    expect(parseCidr('192.168.15.1/24', 'a')).toEqual({ address: '192.168.15.1', prefix: 24, family: 4 });
    expect(parseCidr('2001:DB8:0:0::1/64', 'a')).toEqual({ address: '2001:db8::1', prefix: 64, family: 6 });
    expect(canonical('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(canonical('::ffff:192.0.2.1')).toBe('::ffff:c000:201');
    expect(networkOf(parseCidr('192.168.15.77/24', 'a'))).toBe('192.168.15.0');
    expect(networkOf(parseCidr('2001:db8::77/120', 'a'))).toBe('2001:db8::');
    expect(offset('10.0.0.255', 1)).toBe('10.0.1.0');
    expect(contains(parseCidr('10.0.0.0/8', 'a'), '10.9.9.9')).toBe(true);
    expect(contains(parseCidr('10.0.0.0/8', 'a'), '11.0.0.1')).toBe(false);
  });
  test.each(['192.168.15.1', '192.168.15.256/24', '192.168.15.1/33', '2001:db8::1/129', 'fe80::1%eth0/64', 'x/24', '192.168.15.1/-1', '192.168.15.1/2 4', ''])(
    'refuses CIDR %j',
    (text) => {
      expect(code(() => parseCidr(text, 'address'))).toBe('ERR_NETNS_INVALID_ADDRESS');
    },
  );
  test('wrong family is its own code', () => {
    expect(code(() => parseAddress('2001:db8::1', 'via', 4))).toBe('ERR_NETNS_FAMILY_MISMATCH');
    expect(code(() => toNativeRoute({ to: '10.0.0.0/8', via: '2001:db8::1' }))).toBe('ERR_NETNS_FAMILY_MISMATCH');
    expect(code(() => toNativeRoute({ to: 'default', via: '192.0.2.1', family: 6 }))).toBe('ERR_NETNS_FAMILY_MISMATCH');
    expect(code(() => toNativeRoute({ to: '10.0.0.0/8', via: '10.0.0.1', src: '2001:db8::1' }))).toBe('ERR_NETNS_FAMILY_MISMATCH');
  });
});

describe('routes', () => {
  test('defaults follow ip(8)', () => {
    expect(toNativeRoute({ to: 'default', via: '192.168.15.5' })).toMatchObject({ family: 2, dst: '0.0.0.0', dstLen: 0, gateway: '192.168.15.5', scope: 0, protocol: 3, type: 1 });
    expect(toNativeRoute({ to: '10.0.2.0/24', dev: 'v0' })).toMatchObject({ scope: 253 });
    expect(toNativeRoute({ to: 'default', via: '2001:db8::1' })).toMatchObject({ family: 10, dst: '::' });
    expect(toNativeRoute({ to: '192.0.2.9', dev: 'v0' })).toMatchObject({ dstLen: 32 });
    expect(toNativeRoute({ to: '10.0.0.0/8', via: '10.1.1.1', table: 'main', metric: 7 })).toMatchObject({ table: 254, metric: 7 });
  });
  test('refuses what cannot be a route', () => {
    expect(code(() => toNativeRoute({ to: 'default' }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeRoute({ to: 'default', via: '10.0.0.1', metric: -1 }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeRoute({ to: 'default', via: '10.0.0.1', table: 0 }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeRoute({ to: 'default', via: '10.0.0.1', scope: 'galaxy' as never }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeRoute({ to: 'default', via: '10.0.0.1', gateway: '10.0.0.1' } as never))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeRoute({ to: 'default', dev: 'a/b' }))).toBe('ERR_NETNS_INVALID_IFNAME');
  });
});

describe('links', () => {
  test('mtu, mac and options', () => {
    for (const bad of [67, 65537, 1500.5, -1, '1500', NaN]) {
      expect(code(() => toNativeAdd({ kind: 'bridge', name: 'br0', mtu: bad as number }))).toBe('ERR_NETNS_INVALID_MTU');
    }
    expect(toNativeAdd({ kind: 'bridge', name: 'br0', mtu: 68 }).mtu).toBe(68);
    expect(code(() => toNativeAdd({ kind: 'bridge', name: 'br0', mac: '02:00:00:00:00' }))).toBe('ERR_NETNS_INVALID_MAC');
    expect(code(() => toNativeAdd({ kind: 'bridge', name: 'br0', mac: '01:00:00:00:00:01' }))).toBe('ERR_NETNS_INVALID_MAC');
    expect(code(() => toNativeAdd({ kind: 'bond' as never, name: 'b0' }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeAdd({ kind: 'bridge', name: 'br0', martser: 'x' } as never))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeAdd({ kind: 'veth', name: 'v0' } as never))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeAdd({ kind: 'veth', name: 'v0', peer: { name: 'x'.repeat(16) } }))).toBe('ERR_NETNS_INVALID_IFNAME');
    expect(code(() => toNativeAdd({ kind: 'vxlan', name: 'vx0', id: 2 ** 24 }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeAdd({ kind: 'vxlan', name: 'vx0', id: 1, port: 0 }))).toBe('ERR_NETNS_INVALID_PORT');
    expect(code(() => toNativeAdd({ kind: 'vxlan', name: 'vx0', id: 1, local: '192.0.2.1', remote: '2001:db8::1' }))).toBe('ERR_NETNS_FAMILY_MISMATCH');
  });
  test('sysctl keys stay below net.*', () => {
    expect(validate.sysctlKey('net.ipv4.ip_forward')).toBe('net/ipv4/ip_forward');
    expect(validate.sysctlKey('net/ipv4/conf/eth0.100/rp_filter')).toBe('net/ipv4/conf/eth0.100/rp_filter');
    for (const bad of ['kernel.hostname', 'net', 'net/../kernel/x', 'net.ipv4..x', '/net/ipv4', 'net/ipv4/ x']) {
      expect(code(() => validate.sysctlKey(bad))).toBe('ERR_NETNS_INVALID_ARG');
    }
  });
});
