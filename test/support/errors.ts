/**
 * One way for tests to check a rejection: it is an Error (a NetnsError, not a plain object) with
 * the expected code; a kernel failure (an errno code) also carries a negative `errno` and the
 * operation in `syscall`.
 */
import { NetnsError } from '../../lib/index';

/** Asserts what `e` is and returns it typed. */
export function assertNetnsError(e: unknown, code: string | RegExp): NetnsError {
  expect(e).toBeInstanceOf(Error);
  expect(e).toBeInstanceOf(NetnsError);
  const err = e as NetnsError;
  if (typeof code === 'string') expect(err.code).toBe(code);
  else expect(err.code).toMatch(code);
  expect(typeof err.stack).toBe('string');
  if (/^E[A-Z0-9]+$/.test(err.code)) {
    expect(typeof err.errno).toBe('number');
    expect(err.errno!).toBeLessThan(0);
    expect(typeof err.syscall).toBe('string');
  }
  return err;
}

/** Awaits `p`, which must reject with a NetnsError of `code`; returns the error. */
export async function expectRejection(p: Promise<unknown>, code: string | RegExp): Promise<NetnsError> {
  let settled: { ok: true } | { ok: false; e: unknown };
  try {
    await p;
    settled = { ok: true };
  } catch (e) {
    settled = { ok: false, e };
  }
  if (settled.ok) throw new Error(`expected a rejection with ${String(code)}, but it resolved`);
  return assertNetnsError(settled.e, code);
}

/** The code of the error `p` rejects with (asserting it is an Error and a NetnsError), or undefined when it resolves. */
export async function rejectionCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(NetnsError);
    return (e as NetnsError).code;
  }
  return undefined;
}
