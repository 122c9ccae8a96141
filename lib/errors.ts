/**
 * One error class for everything netns-kit reports, shaped like Node's SystemError:
 * `code` (EEXIST, ENOENT, ... or ERR_NETNS_* for input we refuse), negative `errno`, `syscall`
 * (the operation), and where it happened (`netns`, `ifname`), plus the kernel's extended-ack text.
 */
import { now, traceOn } from './op-trace';
import { constants } from 'node:os';
import type { NativeFailure } from './native';

const errnoNames = new Map<number, SystemErrorCode>();
// Where Linux has two names for one number, the one networking people read in ip(8) output wins.
const preferred = new Set(['EOPNOTSUPP', 'EAGAIN', 'EDEADLK']);
for (const [name, value] of Object.entries(constants.errno) as [SystemErrorCode, number][]) {
  if (!errnoNames.has(value) || preferred.has(name)) errnoNames.set(value, name);
}

/** Codes for input the library refuses before anything reaches the kernel. */
export type InputErrorCode =
  | 'ERR_NETNS_INVALID_NAME'
  | 'ERR_NETNS_INVALID_IFNAME'
  | 'ERR_NETNS_INVALID_ADDRESS'
  | 'ERR_NETNS_FAMILY_MISMATCH'
  | 'ERR_NETNS_INVALID_MTU'
  | 'ERR_NETNS_INVALID_MAC'
  | 'ERR_NETNS_INVALID_ARG'
  | 'ERR_NETNS_INVALID_PORT'
  | 'ERR_NETNS_INVALID_RULE'
  | 'ERR_NETNS_CONFLICT'
  | 'ERR_NETNS_INVALID_TOPOLOGY'
  | 'ERR_NETNS_EXEC_FAILED'
  | 'ERR_NETNS_ABORTED';

/**
 * System error codes, as Node names errno values (`EEXIST`, `EPERM`, `EOPNOTSUPP`, ...): what the
 * kernel or the system refused.
 */
export type SystemErrorCode = keyof typeof constants.errno;

/**
 * Every `code` a {@link NetnsError} can have: a system error code, an input error code (refused
 * before anything reached the kernel), or `ERR_NETNS_ADDON` (the native addon could not be
 * loaded: the message names the fix). The table with their meanings is in docs/errors.md.
 */
export type NetnsErrorCode = SystemErrorCode | InputErrorCode | 'ERR_NETNS_ADDON';

export interface ErrorContext {
  netns?: string;
  ifname?: string;
  /** what the call was doing, e.g. "add link" (used when the kernel did not say) */
  syscall?: string;
}

export class NetnsError extends Error {
  override name = 'NetnsError';
  /** EEXIST, ENOENT, EPERM, ... or ERR_NETNS_* (see {@link NetnsErrorCode}) */
  readonly code: NetnsErrorCode;
  /** negative errno, as Node's fs reports it; undefined for input errors */
  readonly errno?: number;
  /** the operation that failed, e.g. "add link" or "create netns" */
  readonly syscall?: string;
  readonly netns?: string;
  readonly ifname?: string;
  /** the kernel's extended-ack message, when it gave one */
  readonly extack?: string;
  /** further context: a path, the offending field, a hint */
  readonly detail?: string;

  constructor(code: NetnsErrorCode, message: string, fields: Partial<Omit<NetnsError, 'code' | 'message' | 'name'>> = {}) {
    super(message);
    this.code = code;
    Object.assign(this, fields);
  }
}

/** A refused input: never reaches the kernel. */
export function invalid(code: InputErrorCode, message: string, ctx: ErrorContext & { detail?: string } = {}): NetnsError {
  const e = new NetnsError(code, message, ctx);
  Error.captureStackTrace(e, invalid);
  return e;
}

function where(ctx: ErrorContext): string {
  const parts: string[] = [];
  if (ctx.ifname) parts.push(`dev ${ctx.ifname}`);
  if (ctx.netns) parts.push(`netns ${ctx.netns}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

export function isNativeFailure(e: unknown): e is NativeFailure {
  return typeof e === 'object' && e !== null && typeof (e as NativeFailure).errno === 'number' && typeof (e as NativeFailure).syscall === 'string';
}

// The fields a natively made error was made of (its message already reads them), so that call()
// can say again, with where it happened, what the kernel said.
const nativeFields = new WeakMap<NetnsError, NativeFailure>();

/**
 * How the addon makes its errors (lib/native.ts registers it): a NetnsError of a native failure.
 * Every native rejection is thus an Error even where no call() wraps it; call() then adds the
 * namespace, the interface and the caller's stack.
 */
export function nativeError(failure: NativeFailure): NetnsError {
  const e = fromNative(failure, {}, undefined) as NetnsError;
  nativeFields.set(e, { ...failure });
  return e;
}

/** Turns a native rejection into a NetnsError whose stack points at the caller's line. */
export function fromNative(failure: unknown, ctx: ErrorContext, callerStack: string | undefined): Error {
  if (failure instanceof NetnsError) {
    const fields = nativeFields.get(failure);
    // Made in JavaScript (it has its own stack and context already): as it is.
    if (fields === undefined) return failure;
    failure = fields;
  }
  if (!isNativeFailure(failure)) return failure instanceof Error ? failure : new NetnsError('EIO', `EIO: ${String(failure)}`, { syscall: ctx.syscall, netns: ctx.netns, ifname: ctx.ifname });
  const code = errnoNames.get(-failure.errno) ?? 'EIO';
  const op = failure.syscall || ctx.syscall || 'netns-kit';
  let message = `${code}: ${failure.message.toLowerCase()}, ${op}`;
  if (failure.detail) message += ` ${failure.detail}`;
  message += where(ctx);
  if (failure.extack) message += `: ${failure.extack}`;
  const e = new NetnsError(code, message, {
    errno: failure.errno,
    syscall: op,
    netns: ctx.netns,
    ifname: ctx.ifname,
    extack: failure.extack,
    detail: failure.detail,
  });
  if (callerStack) e.stack = `NetnsError: ${message}\n${callerStack}`;
  return e;
}

/**
 * Runs a native call with the caller's stack saved beforehand, so a failure points at the user's
 * line rather than at the addon's promise settlement.
 */
export async function call<T>(ctx: ErrorContext, fn: () => Promise<T>): Promise<T> {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, call);
  const t0 = traceOn ? now() : 0;
  try {
    return await fn();
  } catch (failure) {
    const frames = holder.stack?.split('\n').slice(1).join('\n');
    throw fromNative(failure, ctx, frames);
  } finally {
    if (traceOn) process.stderr.write(`nk-js ${ctx.syscall ?? 'call'} total=${Math.round(now() - t0)}us\n`);
  }
}

/** Codes meaning "that object is not there" (used by missingOk deletes). */
export function isNotFound(e: unknown): boolean {
  return e instanceof NetnsError && (e.code === 'ENOENT' || e.code === 'ENODEV' || e.code === 'ESRCH' || e.code === 'EADDRNOTAVAIL');
}
