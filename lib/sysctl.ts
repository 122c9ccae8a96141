/** net.* sysctls inside one namespace (they are per namespace in the kernel). */
import { call } from './errors';
import { native } from './native';
import * as validate from './validate';
import type { Netns } from './netns';

export class Sysctl {
  constructor(private readonly ns: Netns) {}

  /** Reads a net.* key. Equivalent to: `ip netns exec NAME sysctl -n KEY` */
  async get(key: string): Promise<string> {
    const k = validate.sysctlKey(key);
    return call({ netns: this.ns.label, syscall: 'read sysctl' }, () => native.sysctlGet(this.ns.ref, k));
  }

  /** Writes a net.* key. Equivalent to: `ip netns exec NAME sysctl -w KEY=VALUE` */
  async set(key: string, value: string | number | boolean): Promise<void> {
    const k = validate.sysctlKey(key);
    const v = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
    if (/[\n\0]/.test(v)) throw validate.invalidValue(key);
    await call({ netns: this.ns.label, syscall: 'write sysctl' }, () => native.sysctlSet(this.ns.ref, k, v));
  }
}
