/**
 * Validators for everything users pass in. Each throws a NetnsError with an ERR_NETNS_* code
 * before anything reaches the kernel, and names the offending value.
 */
import { describe } from './ip';
import { invalid } from './errors';

const IFNAMSIZ = 16;

/** Interface names as the kernel accepts them (dev_valid_name): 1-15 bytes, no '/', ':', whitespace; '%' we refuse too (it means "pick a number" to the kernel). */
export function ifname(name: unknown, what = 'interface name'): string {
  if (typeof name !== 'string') throw invalid('ERR_NETNS_INVALID_IFNAME', `${what} must be a string, got ${describe(name)}`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes >= IFNAMSIZ) {
    throw invalid('ERR_NETNS_INVALID_IFNAME', `${what} ${JSON.stringify(name)} must be 1-15 bytes long (is ${bytes})`, { ifname: name });
  }
  if (name === '.' || name === '..' || /[/:%\s\0]/u.test(name)) {
    throw invalid('ERR_NETNS_INVALID_IFNAME', `${what} ${JSON.stringify(name)} may not be "." or ".." or contain '/', ':', '%' or whitespace`, { ifname: name });
  }
  return name;
}

/** Namespace names as `ip netns add` accepts them: a file name under /run/netns. */
export function netnsName(name: unknown): string {
  if (typeof name !== 'string') throw invalid('ERR_NETNS_INVALID_NAME', `namespace name must be a string, got ${describe(name)}`);
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 255) {
    throw invalid('ERR_NETNS_INVALID_NAME', `namespace name must be 1-255 bytes long (is ${bytes})`, { netns: name });
  }
  if (name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw invalid('ERR_NETNS_INVALID_NAME', `namespace name ${JSON.stringify(name)} may not be "." or ".." or contain '/'`, { netns: name });
  }
  return name;
}

export function integer(v: unknown, what: string, min: number, max: number, code: 'ERR_NETNS_INVALID_ARG' | 'ERR_NETNS_INVALID_MTU' | 'ERR_NETNS_INVALID_PORT' = 'ERR_NETNS_INVALID_ARG'): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(code, `${what} must be an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

/** 68 (the IPv4 minimum) to 65536 (loopback); each device's own maximum is the kernel's to enforce. */
export function mtu(v: unknown): number {
  return integer(v, 'mtu', 68, 65536, 'ERR_NETNS_INVALID_MTU');
}

export function mac(v: unknown): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(v)) {
    throw invalid('ERR_NETNS_INVALID_MAC', `MAC address must look like 02:00:00:00:00:01, got ${describe(v)}`);
  }
  if (parseInt(v.slice(0, 2), 16) & 1) throw invalid('ERR_NETNS_INVALID_MAC', `MAC address ${v} is a multicast address`);
  return v.toLowerCase();
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw invalid('ERR_NETNS_INVALID_ARG', `${what} must be true or false, got ${describe(v)}`);
  return v;
}

export function oneOf<T extends string>(v: unknown, what: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw invalid('ERR_NETNS_INVALID_ARG', `${what} must be one of ${allowed.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

export function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid('ERR_NETNS_INVALID_ARG', `${what} must be an object, got ${describe(v)}`);
  return v as Record<string, unknown>;
}

/** Rejects keys we do not know, so a typo ("martser") is an error rather than silently ignored. */
export function knownKeys(o: Record<string, unknown>, what: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k) && o[k] !== undefined) {
      throw invalid('ERR_NETNS_INVALID_ARG', `${what} has an unknown option "${k}" (known: ${allowed.join(', ')})`);
    }
  }
}

/** sysctl keys below net.* in dotted (net.ipv4.ip_forward) or slashed (net/ipv4/conf/eth0.1/rp_filter) form. */
export function sysctlKey(key: unknown): string {
  if (typeof key !== 'string') throw invalid('ERR_NETNS_INVALID_ARG', `sysctl key must be a string, got ${describe(key)}`);
  const parts = key.includes('/') ? key.split('/') : key.split('.');
  if (parts[0] !== 'net' || parts.length < 2 || parts.some((p) => p === '' || p === '.' || p === '..' || !/^[A-Za-z0-9_.:@-]+$/.test(p))) {
    throw invalid('ERR_NETNS_INVALID_ARG', `sysctl key must name a net.* setting, got ${JSON.stringify(key)}`);
  }
  return parts.join('/');
}

export function invalidValue(key: string) {
  return invalid('ERR_NETNS_INVALID_ARG', `value for ${key} may not contain a newline or NUL`);
}

/** IPv4 address labels ("eth0:1"): like ip(8), 1-15 bytes starting with the device's name. */
export function addressLabel(label: unknown, dev: string): string {
  if (typeof label !== 'string' || Buffer.byteLength(label) >= IFNAMSIZ || !label.startsWith(dev) || /[/\s\0]/.test(label)) {
    throw invalid('ERR_NETNS_INVALID_ARG', `label must be at most 15 bytes and start with the device name ${dev}, got ${describe(label)}`);
  }
  return label;
}
