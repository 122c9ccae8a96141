// tc units, shape validation and the qdisc plan: pure functions, no kernel (lib/shape.ts, lib/tc.ts).
import { NetnsError } from '../lib/errors';
import {
  defaultBurst,
  formatShape,
  handle,
  ifbName,
  needsNetem,
  parsePercent,
  parseRate,
  parseSize,
  parseTime,
  percentToProb,
  planDirection,
  probToPercent,
  shapeFromQdiscs,
  TC_H_ROOT,
  validateShape,
} from '../lib/shape';
import { formatHandle, formatU32Handle, parseHandle, parseU32Handle, shapeMatches, toNativeFilter, toNativeQdisc } from '../lib/tc';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NetnsError);
    return (e as NetnsError).code;
  }
  return undefined;
}

describe('units as tc writes them', () => {
  test.each([
    ['10mbit', 10_000_000],
    ['10Mbit', 10_000_000],
    ['512kbit', 512_000],
    ['1gbit', 1e9],
    ['1mibit', 1024 * 1024],
    ['100kbps', 800_000],
    ['1mbps', 8_000_000],
    ['1000', 1000],
    ['1.5mbit', 1_500_000],
    [20_000_000, 20_000_000],
  ])('rate %p -> %p bit/s', (v, bits) => expect(parseRate(v)).toBe(bits));

  test.each([
    ['32kb', 32768],
    ['32k', 32768],
    ['1mb', 1024 * 1024],
    ['1500b', 1500],
    ['1500', 1500],
    ['8kbit', 1024],
    [3000, 3000],
  ])('size %p -> %p bytes', (v, bytes) => expect(parseSize(v)).toBe(bytes));

  test.each([
    ['40ms', 40],
    ['1s', 1000],
    ['2secs', 2000],
    ['500us', 0.5],
    ['250usec', 0.25],
    [40, 40],
    [0, 0],
  ])('time %p -> %p ms', (v, ms) => expect(parseTime(v)).toBe(ms));

  test.each([
    ['1%', 1],
    ['0.5%', 0.5],
    [100, 100],
    [0, 0],
  ])('percent %p -> %p', (v, p) => expect(parsePercent(v)).toBe(p));

  test.each([
    ['rate', () => parseRate('10 parsecs')],
    ['rate', () => parseRate('-5mbit')],
    ['rate', () => parseRate(-1)],
    ['rate', () => parseRate(0)],
    ['rate', () => parseRate('100gbit')],
    ['rate', () => parseRate(Number.NaN)],
    ['rate', () => parseRate(null)],
    ['size', () => parseSize('12 apples')],
    ['size', () => parseSize(-1)],
    ['size', () => parseSize(0)],
    ['time', () => parseTime('40')],
    ['time', () => parseTime('40 fortnights')],
    ['time', () => parseTime(-1)],
    ['time', () => parseTime('2h')],
    ['percent', () => parsePercent(101)],
    ['percent', () => parsePercent('150%')],
    ['percent', () => parsePercent(-0.1)],
    ['percent', () => parsePercent('1x')],
  ])('%s: bad input is ERR_NETNS_INVALID_ARG', (_what, fn) => expect(code(fn)).toBe('ERR_NETNS_INVALID_ARG'));
});

describe('shape validation', () => {
  test('normalises every field to plain units', () => {
    expect(validateShape({ rate: '10mbit', delay: '40ms', jitter: '5ms', loss: 1, ingress: { rate: '4mbit' } })).toEqual({
      rate: 10_000_000,
      delay: 40,
      jitter: 5,
      loss: 1,
      ingress: { rate: 4_000_000 },
    });
    expect(validateShape(null)).toBeNull();
    expect(validateShape({})).toEqual({});
    expect(validateShape({ rate: '1mbit', limit: '64kb' })).toEqual({ rate: 1e6, limit: 65536 });
    expect(validateShape({ delay: 10, limit: 500 })).toEqual({ delay: 10, limit: 500 });
  });

  test.each([
    [{ rate: '-10mbit' }],
    [{ rate: '10 furlongs' }],
    [{ loss: 101 }],
    [{ loss: '200%' }],
    [{ duplicate: -1 }],
    [{ delay: -5 }],
    [{ rtae: '10mbit' }],
    [{ ingress: { rate: '1mbit', bogus: 1 } }],
    [{ ingress: { ingress: {} } }],
    [{ burst: '32kb' }],
    [{ latency: '50ms' }],
    [{ rate: '1mbit', latency: '10ms', limit: '10kb' }],
    [{ jitter: '5ms' }],
    [{ reorder: 25 }],
    [{ delay: '10ms', limit: '10kb' }],
    [[{ rate: '1mbit' }]],
    ['10mbit'],
    [undefined],
  ])('%p is ERR_NETNS_INVALID_ARG', (v) => expect(code(() => validateShape(v))).toBe('ERR_NETNS_INVALID_ARG'));

  test('impairments need netem, a rate alone does not', () => {
    expect(needsNetem({ rate: 1e6 })).toBe(false);
    expect(needsNetem({ rate: 1e6, loss: 0 })).toBe(false);
    expect(needsNetem({ delay: 1 })).toBe(true);
    expect(needsNetem({ corrupt: 0.1 })).toBe(true);
  });
});

describe('qdisc plan', () => {
  test('rate only: a tbf at the root, handle 1:', () => {
    const p = planDirection({ rate: 10_000_000 }, undefined);
    expect(p.root).toEqual({ kind: 'tbf', parent: TC_H_ROOT, handle: handle(1), options: { rate: 1_250_000, burst: 12_500, latency: 50_000 } });
    expect(p.child).toBeUndefined();
  });

  test('default burst: 10 ms of the rate, at least two frames', () => {
    expect(defaultBurst(10_000_000)).toBe(12_500);
    expect(defaultBurst(100_000)).toBe(3028);
  });

  test('impairments: netem root 2:, tbf child 3: below 2:1 when a rate comes too', () => {
    const p = planDirection({ rate: 8_000_000, delay: 40, jitter: 5, loss: 1 }, undefined);
    expect(p.root.kind).toBe('netem');
    expect(p.root.handle).toBe(handle(2));
    expect(p.root.options).toEqual({ delay: 40_000, jitter: 5_000, loss: percentToProb(1) });
    expect(p.child).toEqual({ kind: 'tbf', parent: handle(2, 1), handle: handle(3), options: { rate: 1_000_000, burst: 10_000, latency: 50_000 } });
  });

  test('same kind keeps the handle (changed in place); another kind takes the other handle (swapped in one graft)', () => {
    expect(planDirection({ rate: 1e6 }, { kind: 'tbf', handle: handle(1), hasChild: false }).root.handle).toBe(handle(1));
    expect(planDirection({ rate: 1e6 }, { kind: 'tbf', handle: handle(0x11), hasChild: false }).root.handle).toBe(handle(0x11));
    // a foreign htb at 1: must not be "changed" into a tbf (the kernel refuses a kind change in place)
    expect(planDirection({ rate: 1e6 }, { kind: 'htb', handle: handle(1), hasChild: false }).root.handle).toBe(handle(0x11));
    expect(planDirection({ delay: 5 }, { kind: 'tbf', handle: handle(1), hasChild: false }).root.handle).toBe(handle(2));
    // netem losing (or gaining) its tbf child is a new tree: the other netem handle
    expect(planDirection({ delay: 5 }, { kind: 'netem', handle: handle(2), hasChild: true }).root.handle).toBe(handle(0x12));
    expect(planDirection({ delay: 5 }, { kind: 'netem', handle: handle(2), hasChild: false }).root.handle).toBe(handle(2));
  });

  test('read back: the kernel units turn into the input units', () => {
    expect(shapeFromQdiscs({ kind: 'tbf', options: { rate: 1_250_000, burst: 12_500, limit: 75_000 } })).toEqual({ rate: 10_000_000, burst: 12_500, limit: 75_000 });
    expect(
      shapeFromQdiscs({ kind: 'netem', options: { delay: 40_000, jitter: 5_000, loss: percentToProb(1), duplicate: 0, corrupt: 0, reorder: 0, gap: 0, limit: 1000 } }, { kind: 'tbf', options: { rate: 1e6, burst: 1e4, limit: 6e4 } }),
    ).toEqual({ delay: 40, jitter: 5, loss: 1, limit: 1000, rate: 8e6, burst: 1e4 });
    expect(shapeFromQdiscs({ kind: 'htb', options: {} })).toBeUndefined();
    expect(probToPercent(percentToProb(0.5))).toBe(0.5);
  });

  test('ifb names come from the ifindex and fit IFNAMSIZ', () => {
    expect(ifbName(7)).toBe('nkifb7');
    expect(Buffer.byteLength(ifbName(2 ** 31 - 1))).toBeLessThanOrEqual(15);
  });
});

describe('tc handles and specs', () => {
  test.each([
    ['1:', 0x10000],
    ['1:10', 0x10010],
    ['ffff:', 0xffff0000],
    [':1', 1],
    ['root', 0xffffffff],
    ['ingress', 0xfffffff1],
  ])('handle %p -> %p', (s, n) => expect(parseHandle(s)).toBe(n));

  test('format is the inverse', () => {
    expect(formatHandle(0x10010)).toBe('1:10');
    expect(formatHandle(0x10000)).toBe('1:');
    expect(formatHandle(0xffffffff, true)).toBe('root');
    expect(parseU32Handle('800::800')).toBe(0x80000800);
    expect(formatU32Handle(0x80000800)).toBe('800::800');
    expect(formatU32Handle(0x80000000)).toBe('800::');
  });

  test.each([['1'], ['x:'], ['1:2:3'], ['10000:'], [7]])('bad handle %p', (h) => expect(code(() => parseHandle(h))).toBe('ERR_NETNS_INVALID_ARG'));

  test('qdisc specs convert to kernel units, unknown fields are refused', () => {
    expect(toNativeQdisc({ dev: 'v0', kind: 'tbf', rate: '8mbit', burst: '16kb', latency: '50ms' })).toEqual({
      dev: 'v0',
      kind: 'tbf',
      parent: 0xffffffff,
      options: { rate: 1_000_000, burst: 16384, latency: 50_000 },
    });
    expect(toNativeQdisc({ dev: 'v0', kind: 'ingress' })).toEqual({ dev: 'v0', kind: 'ingress', parent: 0xfffffff1, handle: 0xffff0000, options: {} });
    expect(toNativeQdisc({ dev: 'v0', kind: 'netem', delay: '40ms', loss: '100%' }).options).toEqual({ delay: 40_000, loss: 0xffffffff });
    const bad = [
      { dev: 'v0', kind: 'tbf', rate: '8mbit' },
      { dev: 'v0', kind: 'tbf', rate: '8mbit', burst: 1000, limit: 1, latency: 1 },
      { dev: 'v0', kind: 'netem', loss: 101 },
      { dev: 'v0', kind: 'netem', dealy: '40ms' },
      { dev: 'v0', kind: 'cake' },
      { dev: 'v0', kind: 'tbf', rate: '8 parsecs', burst: 1000, limit: 1 },
    ];
    for (const b of bad) expect(code(() => toNativeQdisc(b as never))).toBe('ERR_NETNS_INVALID_ARG');
  });

  test('filter specs: u32 match-all by default, mirred redirect, gact verdicts', () => {
    expect(toNativeFilter({ dev: 'v0', parent: 'ingress', kind: 'u32', actions: [{ kind: 'mirred', action: 'redirect', dev: 'ifb0' }] })).toEqual({
      dev: 'v0',
      parent: 0xfffffff1,
      kind: 'u32',
      keys: [{ value: 0, mask: 0, off: 0 }],
      actions: [{ kind: 'mirred', mirredAction: 1, policy: 4, dev: 'ifb0' }],
    });
    expect(toNativeFilter({ dev: 'v0', parent: '1:', kind: 'u32', match: [{ value: 0xc0000201, mask: 0xffffffff, at: 16 }], flowid: '1:10' })).toMatchObject({
      keys: [{ value: 0xc0000201, mask: 0xffffffff, off: 16 }],
      classid: 0x10010,
    });
    expect(code(() => toNativeFilter({ dev: 'v0', parent: '1:', kind: 'u32', match: [{ value: 1, mask: 1, at: 3 }] }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeFilter({ dev: 'v0', parent: '1:', kind: 'bpf' as never }))).toBe('ERR_NETNS_INVALID_ARG');
    expect(code(() => toNativeFilter({ dev: 'v0', parent: '1:', kind: 'u32', actions: [{ kind: 'police' } as never] }))).toBe('ERR_NETNS_INVALID_ARG');
  });
});

describe('shape matching and formatting', () => {
  test('shapeMatches: given fields, rate to the byte/s, burst within the kernel rounding, no extra direction', () => {
    expect(shapeMatches({ rate: 10e6 }, { rate: 10e6, burst: 12_500, limit: 75_000 })).toBe(true);
    expect(shapeMatches({ rate: 10e6, burst: 16384 }, { rate: 10e6, burst: 16382, limit: 1 })).toBe(true);
    expect(shapeMatches({ rate: 10e6, burst: 16384 }, { rate: 10e6, burst: 12_000, limit: 1 })).toBe(false);
    expect(shapeMatches({ rate: 10e6 }, { rate: 8e6, burst: 1, limit: 1 })).toBe(false);
    expect(shapeMatches({ rate: 10e6 }, { rate: 10e6, burst: 1, limit: 1, ingress: { rate: 1e6 } })).toBe(false);
    expect(shapeMatches({ ingress: { rate: 1e6 } }, { ingress: { rate: 1e6, burst: 3028, limit: 9278 } })).toBe(true);
    expect(shapeMatches({ ingress: { rate: 1e6 } }, { rate: 5e6, ingress: { rate: 1e6 } })).toBe(false);
    expect(shapeMatches({ delay: 40, loss: 1 }, { delay: 40, loss: 1 })).toBe(true);
    expect(shapeMatches({ delay: 40 }, { delay: 40, loss: 1 })).toBe(false);
    expect(shapeMatches(null, null)).toBe(true);
    expect(shapeMatches({}, null)).toBe(true);
    expect(shapeMatches(null, { rate: 1e6 })).toBe(false);
  });

  test('formatShape: one line for tables', () => {
    expect(formatShape(null)).toBe('-');
    expect(formatShape({ rate: 10e6, burst: 1, limit: 2 })).toBe('rate 10mbit');
    expect(formatShape({ rate: 1.5e9, delay: 40, jitter: 5, loss: 1 })).toBe('rate 1.5gbit delay 40ms ±5ms loss 1%');
    expect(formatShape({ ingress: { rate: 512_000 } })).toBe('in: rate 512kbit');
    expect(formatShape({ rate: 96, ingress: { rate: 4e6 } })).toBe('rate 96bit | in: rate 4mbit');
  });
});
