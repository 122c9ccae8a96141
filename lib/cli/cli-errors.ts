/**
 * Exit codes and the one-line error report of the `netns-kit` command. Scripts branch on the exit
 * code; people read the line: code, what failed, where (namespace, interface, file path), and a hint.
 */
/** Documented in docs/cli.md and in `netns-kit --help`; keep the three in step. */
export const EXIT = {
  /** everything worked (status: the live state matches the file) */
  OK: 0,
  /** an operation failed: the kernel or the system refused, or a demo check did not hold */
  FAILED: 1,
  /** the command line is wrong: unknown command or option, missing argument */
  USAGE: 2,
  /** the input was refused before anything changed: an invalid topology file, name or value */
  INVALID: 3,
  /** status FILE: the live state differs from the file */
  MISMATCH: 4,
  /** not permitted: netns-kit needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) */
  PERMISSION: 5,
  /** interrupted (Ctrl-C / SIGTERM); what the command had made was removed */
  INTERRUPTED: 130,
} as const;

export const EXIT_CODE_HELP = `Exit codes:
  0    success (status FILE: the live state matches the file)
  1    an operation failed (kernel or system error, or a demo check did not hold)
  2    usage error: unknown command or option, missing or extra argument
  3    input refused before anything changed: invalid topology file, name or value
  4    status FILE: the live state differs from the file
  5    not permitted: run as root
  130  interrupted (Ctrl-C); what the command made was removed
  exec passes the command's own exit code through (126: cannot run it, 127: not found)`;

/** A wrong command line: printed with the command's usage line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** A check of the demo (or of a command's own result) that did not hold. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  readonly code = 'ERR_NETNS_CHECK_FAILED';
}

/** Ctrl-C or SIGTERM arrived while a command was working. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  readonly code = 'ERR_NETNS_ABORTED';
  constructor(signal: string) {
    super(`interrupted by ${signal}`);
  }
}

const HINTS: Record<string, string> = {
  EPERM: 'netns-kit changes network namespaces: run it as root (sudo netns-kit ...)',
  EACCES: 'netns-kit changes network namespaces: run it as root (sudo netns-kit ...)',
  EEXIST: 'it already exists: pick another name, or remove the old one (netns-kit down FILE, ip netns delete NAME)',
  ENOENT: 'it does not exist (yet): check the name with `netns-kit list` or `ip -n NAME link`',
  ENODEV: 'no such interface: check the name with `ip -n NAME link`',
  EOPNOTSUPP: 'this kernel lacks that feature (for example the dummy, vlan or ipvlan link kinds); use another kind',
  EBUSY: 'it is in use: stop what uses it, or wait and retry',
  ENETUNREACH: 'no route to that address in the namespace: add one (ip -n NAME route)',
  EADDRINUSE: 'the address or port is already in use',
  ERR_NETNS_INVALID_TOPOLOGY: 'fix the file at the path named above; the schema is in docs/topology.md',
  ERR_NETNS_INVALID_NAME: 'namespace names are file names under /run/netns: 1-255 bytes, no "/"',
  ERR_NETNS_INVALID_IFNAME: 'interface names are 1-15 bytes without "/", ":", "%" or spaces',
  ERR_NETNS_INVALID_ADDRESS: 'write addresses as 192.168.15.1/24 or 2001:db8::1/64',
  ERR_NETNS_INVALID_PORT: 'ports are integers from 1 to 65535',
  ERR_NETNS_CONFLICT: 'it overlaps something that is already there',
  ERR_NETNS_EXEC_FAILED: 'the command ran but exited non-zero; its output is shown above',
  ENOSPC: 'a kernel or file system limit was reached (for example inotify watches or the netns count)',
  ERR_NETNS_CHECK_FAILED: 'run with --keep to leave the network up and look at it, then `netns-kit demo --clean`',
};

function errorCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown })?.code;
  return typeof c === 'string' ? c : undefined;
}

/** Which exit code an error means. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return EXIT.USAGE;
  if (e instanceof Interrupted) return EXIT.INTERRUPTED;
  const code = errorCode(e);
  if (code === 'EPERM' || code === 'EACCES') return EXIT.PERMISSION;
  if (code === 'ERR_NETNS_ABORTED') return EXIT.INTERRUPTED;
  if (code?.startsWith('ERR_NETNS_') && code !== 'ERR_NETNS_EXEC_FAILED' && code !== 'ERR_NETNS_CHECK_FAILED' && code !== 'ERR_NETNS_ADDON') return EXIT.INVALID;
  return EXIT.FAILED;
}

/** The where-part that is not already in the message: namespace, interface, path. */
function whereOf(e: unknown, message: string): string {
  const parts: string[] = [];
  const o = e as { netns?: unknown; ifname?: unknown; path?: unknown };
  if (typeof o.netns === 'string' && !message.includes(o.netns)) parts.push(`netns ${o.netns}`);
  if (typeof o.ifname === 'string' && !message.includes(o.ifname)) parts.push(`dev ${o.ifname}`);
  if (typeof o.path === 'string' && !message.includes(o.path)) parts.push(o.path);
  return parts.length ? ` [${parts.join(', ')}]` : '';
}

/**
 * One readable line: `netns-kit up: EEXIST: file exists, add link veth-red (dev veth-red, netns red)
 * — hint: ...`. Multi-line messages (a failed command's stderr) are folded onto that line.
 */
export function formatError(e: unknown, command: string | undefined): string {
  const prefix = command ? `netns-kit ${command}: ` : 'netns-kit: ';
  if (e instanceof UsageError) {
    const help = e.command ? `netns-kit ${e.command} --help` : 'netns-kit --help';
    return `${prefix}${e.message} (see \`${help}\`)`;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  const code = errorCode(err);
  // A file with several errors: one per line, as validation listed them (up to 20).
  if (code === 'ERR_NETNS_INVALID_TOPOLOGY' && /\d+ errors[^\n]*:\n {2}/.test(err.message)) {
    const text = err.message.trim().startsWith(code) ? err.message.trim() : `${code}: ${err.message.trim()}`;
    return `${prefix}${text}\nhint: ${HINTS[code]}`;
  }
  let message = err.message.replace(/\s*\n\s*/g, ' | ').trim();
  // Kernel errors already start with their code ("EEXIST: file exists, ..."); input errors do not.
  if (code && !message.startsWith(`${code}:`) && !message.startsWith(code)) message = `${code}: ${message}`;
  const hint = code ? HINTS[code] : undefined;
  return `${prefix}${message}${whereOf(err, message)}${hint ? ` — hint: ${hint}` : ''}`;
}
