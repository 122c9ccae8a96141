// Property-based tests (fast-check) over the validators: for any input they never crash, never
// let invalid input reach the kernel, and always give the documented code.
import fc from 'fast-check';
import path from 'node:path';
import { NetnsError, netns, type Netns } from '../lib/index';
import { native } from '../lib/native';
import * as validate from '../lib/validate';
import { parseCidr } from '../lib/ip';
import { toNativeRoute } from '../lib/routes';
import { toNativeAdd } from '../lib/links';
import { Sandbox } from './support/sandbox';

function outcome(fn: () => unknown): { ok: true; value: unknown } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (!(e instanceof NetnsError)) throw e; // anything else is a crash
    return { ok: false, code: e.code };
  }
}

// Strings rich in the characters that matter here.
const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', 'é', '/', ':', '%', ' ', '\t', '\n', '.', '\0', '-', '0', ';', '"', '{', '}', '#', '$', '`'), maxLength: 20 }),
  fc.constantFrom('..', '.', '../../etc', '/run/netns/x', 'a/../../b', '%d', 'eth0:1', 'x'.repeat(300), 'é'.repeat(8), '', '"; flush ruleset; "', '} ; table ip x {'),
);

describe('validators never crash and always give the documented code', () => {
  test('interface names', () => {
    fc.assert(
      fc.property(nasty, (s) => {
        const r = outcome(() => validate.ifname(s));
        if (r.ok) {
          const bytes = Buffer.byteLength(s);
          expect(bytes >= 1 && bytes <= 15).toBe(true);
          expect(/[/:%\s\0]/.test(s)).toBe(false);
          expect(s === '.' || s === '..').toBe(false);
        } else {
          expect(r.code).toBe('ERR_NETNS_INVALID_IFNAME');
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('namespace names can never leave /run/netns', () => {
    fc.assert(
      fc.property(nasty, (s) => {
        const r = outcome(() => validate.netnsName(s));
        if (r.ok) {
          expect(path.dirname(path.join('/run/netns', s))).toBe('/run/netns');
          expect(path.basename(path.join('/run/netns', s))).toBe(s);
        } else {
          expect(r.code).toBe('ERR_NETNS_INVALID_NAME');
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('CIDRs round-trip or are refused', () => {
    const cidrish = fc.oneof(
      nasty,
      fc.tuple(fc.ipV4(), fc.integer({ min: -2, max: 40 })).map(([a, p]) => `${a}/${p}`),
      fc.tuple(fc.ipV6(), fc.integer({ min: -2, max: 140 })).map(([a, p]) => `${a}/${p}`),
    );
    fc.assert(
      fc.property(cidrish, (s) => {
        const r = outcome(() => parseCidr(s, 'address'));
        if (r.ok) {
          const c = r.value as ReturnType<typeof parseCidr>;
          expect(parseCidr(`${c.address}/${c.prefix}`, 'address')).toEqual(c);
          expect(c.prefix).toBeLessThanOrEqual(c.family === 4 ? 32 : 128);
        } else {
          expect(['ERR_NETNS_INVALID_ADDRESS', 'ERR_NETNS_FAMILY_MISMATCH']).toContain(r.code);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('route and link objects of any shape', () => {
    const value = fc.oneof(nasty, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant(undefined), fc.ipV4(), fc.ipV6());
    const routeish = fc.record(
      { to: fc.oneof(value, fc.constant('default')), via: value, dev: value, metric: value, table: value, scope: value, src: value, family: value, type: value },
      { requiredKeys: [] },
    );
    const linkish = fc.record(
      { kind: fc.oneof(value, fc.constantFrom('veth', 'bridge', 'macvlan', 'vxlan', 'dummy')), name: value, mtu: value, mac: value, master: value, up: value, peer: fc.oneof(value, fc.record({ name: value })), parent: value, id: value },
      { requiredKeys: [] },
    );
    const codes = ['ERR_NETNS_INVALID_ARG', 'ERR_NETNS_INVALID_ADDRESS', 'ERR_NETNS_FAMILY_MISMATCH', 'ERR_NETNS_INVALID_IFNAME', 'ERR_NETNS_INVALID_MTU', 'ERR_NETNS_INVALID_MAC', 'ERR_NETNS_INVALID_PORT'];
    fc.assert(
      fc.property(routeish, linkish, (route, link) => {
        const r = outcome(() => toNativeRoute(route as never));
        if (!r.ok) expect(codes).toContain(r.code);
        const l = outcome(() => toNativeAdd(link as never));
        if (!l.ok) expect(codes).toContain(l.code);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('invalid input never reaches the kernel', () => {
  const sb = new Sandbox();
  let ns: Netns;
  beforeAll(async () => {
    ns = await sb.ns('prop');
  });
  afterAll(() => sb.cleanup());

  test('through the public API', async () => {
    const spies = (['netnsCreate', 'linkAdd', 'linkSet', 'linkDelete', 'addrAdd', 'routeAdd', 'sysctlSet'] as const).map((k) => jest.spyOn(native, k));
    const badIfname = nasty.filter((s) => outcome(() => validate.ifname(s)).ok === false);
    const badNsName = nasty.filter((s) => outcome(() => validate.netnsName(s)).ok === false);
    try {
      await fc.assert(
        fc.asyncProperty(badIfname, badNsName, fc.string({ maxLength: 30 }), async (ifn, nsn, junk) => {
          const attempts: Array<[Promise<unknown>, string[]]> = [
            [netns.create(nsn), ['ERR_NETNS_INVALID_NAME']],
            [ns.links.add({ kind: 'bridge', name: ifn }), ['ERR_NETNS_INVALID_IFNAME']],
            [ns.links.add({ kind: 'veth', name: 'ok', peer: { name: ifn } }), ['ERR_NETNS_INVALID_IFNAME']],
            [ns.links.set(ifn, { up: true }), ['ERR_NETNS_INVALID_IFNAME']],
            [ns.links.delete(ifn), ['ERR_NETNS_INVALID_IFNAME']],
            [ns.addresses.add('lo', junk), ['ERR_NETNS_INVALID_ADDRESS', 'ERR_NETNS_FAMILY_MISMATCH']],
            [ns.routes.add({ to: junk, dev: 'lo' }), ['ERR_NETNS_INVALID_ADDRESS', 'ERR_NETNS_FAMILY_MISMATCH']],
            [ns.sysctl.set(`kernel.${junk}`, 1), ['ERR_NETNS_INVALID_ARG']],
          ];
          for (const [p, expected] of attempts) {
            const e = await p.then(
              () => undefined,
              (x: unknown) => x,
            );
            const lenient = expected.includes('ERR_NETNS_INVALID_ADDRESS');
            // `junk` may happen to be a valid address or route; only then may it reach the kernel.
            if (lenient && (e === undefined || (e as NetnsError).errno !== undefined)) continue;
            expect(e).toBeInstanceOf(NetnsError);
            expect(expected).toContain((e as NetnsError).code);
          }
          for (const s of spies.slice(0, 5)) expect(s).not.toHaveBeenCalled();
          expect(spies[6]).not.toHaveBeenCalled();
        }),
        { numRuns: 300 },
      );
      // The spies do see calls that pass validation (so the checks above can fail).
      await ns.links.add({ kind: 'bridge', name: 'spied' });
      expect(spies[1]).toHaveBeenCalledTimes(1);
    } finally {
      for (const s of spies) s.mockRestore();
    }
  });
});

describe('NAT rule objects', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const rules = require('../lib/nat-rules') as typeof import('../lib/nat-rules');
  const injection = fc.constantFrom('eth0" ; flush ruleset ; "', 'x } ; table ip evil {', 'a\nb', '*', 'eth\\0', '"', ';', '{', '}', '#comment', '@set', '$var', 'lo');
  const value = fc.oneof(nasty, injection, fc.integer({ min: -5, max: 70000 }), fc.double(), fc.boolean(), fc.constant(null), fc.ipV4(), fc.ipV6(), fc.constant('192.168.15.0/24'));
  const ruleish = fc.record(
    {
      kind: fc.oneof(value, fc.constantFrom('masquerade', 'snat', 'portForward', 'service')),
      source: value,
      to: fc.oneof(value, fc.record({ address: value, port: value }, { requiredKeys: [] })),
      outInterface: value,
      inInterface: value,
      protocol: fc.oneof(value, fc.constantFrom('tcp', 'udp', 'sctp', 'icmp')),
      port: fc.oneof(value, fc.record({ from: value, to: value }, { requiredKeys: [] })),
      vip: value,
      backends: fc.oneof(value, fc.array(fc.record({ address: value, port: value }), { maxLength: 3 })),
      tag: value,
      exclude: fc.oneof(value, fc.array(value, { maxLength: 3 })),
    },
    { requiredKeys: [] },
  );

  test('normalize never crashes; what it accepts serialises to JSON whose strings are exactly the validated values', () => {
    fc.assert(
      fc.property(ruleish, (r) => {
        const out = outcome(() => rules.normalize(r));
        if (!out.ok) {
          expect(out.code).toMatch(/^ERR_NETNS_/);
          return;
        }
        const spec = out.value as ReturnType<typeof rules.normalize>;
        const doc = rules.document(rules.buildRules('netns_kit', spec, rules.ruleId(spec)).map(rules.addRule));
        const parsed = JSON.parse(doc) as unknown;
        // Interface names in the generated rules are single JSON strings that passed validation.
        for (const name of [(spec as { outInterface?: string }).outInterface, (spec as { inInterface?: string }).inInterface]) {
          if (name === undefined) continue;
          expect(() => validate.ifname(name)).not.toThrow();
          expect(name).not.toMatch(/["*\\\s;{}]/);
        }
        expect(typeof parsed).toBe('object');
      }),
      { numRuns: 3000 },
    );
  });

  test('invalid rules never reach the kernel, through the API', async () => {
    const sb = new Sandbox();
    const ns = await sb.ns('natprop');
    const spy = jest.spyOn(native, 'nftRun');
    try {
      await fc.assert(
        fc.asyncProperty(
          ruleish.filter((r) => !outcome(() => rules.normalize(r)).ok),
          async (r) => {
            const e = await ns.nat.apply([r as never]).then(
              () => undefined,
              (x: unknown) => x,
            );
            expect(e).toBeInstanceOf(NetnsError);
            expect((e as NetnsError).code).toMatch(/^ERR_NETNS_/);
          },
        ),
        { numRuns: 300 },
      );
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
      await sb.cleanup();
    }
  });
});
