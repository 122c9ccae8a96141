/**
 * Up-front privilege check for operations that write several places (the registry under /run,
 * namespaces, NAT tables): without CAP_SYS_ADMIN and CAP_NET_ADMIN they fail with one clear EPERM
 * before touching anything, instead of the first file system error on the way (EACCES).
 */
import { readFileSync } from 'node:fs';
import { NetnsError } from './errors';

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

export function hasNetworkPrivileges(): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  if (!line) return false;
  const eff = BigInt(`0x${line.slice('CapEff:'.length).trim()}`);
  return ((eff >> CAP_NET_ADMIN) & 1n) === 1n && ((eff >> CAP_SYS_ADMIN) & 1n) === 1n;
}

export function requireNetworkPrivileges(operation: string): void {
  if (!hasNetworkPrivileges()) {
    throw new NetnsError('EPERM', `EPERM: operation not permitted, ${operation} (needs CAP_SYS_ADMIN and CAP_NET_ADMIN)`, { errno: -1, syscall: operation });
  }
}
