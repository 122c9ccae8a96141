/**
 * Advisory whole-file locks (flock(2)), taken without blocking a thread: the addon tries
 * LOCK_EX|LOCK_NB and this polls with a short random back-off until `timeoutMs`.
 * Equivalent to: `flock --exclusive --timeout T FILE`
 */
import { native } from './native';

/** Takes an exclusive flock on the open file `fd`; false when another holder kept it for `timeoutMs`. */
export async function acquireFileLock(fd: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!native.flockTry(fd)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8));
  }
  return true;
}
