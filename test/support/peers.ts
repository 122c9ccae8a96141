/**
 * How tests start their helper programs (python3 traffic peers, an XML parser).
 *
 * Always Debian's interpreter by absolute path: PATH may lead to a version manager's shim (pyenv
 * here), which costs seconds per start and lacks python3-pyroute2. And never with the sanitizer
 * preload of `npm run test:asan`: it instruments only our addon, yet every child inherits the
 * LD_PRELOAD and becomes several times slower to start, which turned fixed waits into failures
 * when several peers started at once.
 */
export const PYTHON = '/usr/bin/python3';

/** The environment for a helper child: ours, minus the sanitizer preload and its options. */
export function peerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.ASAN_OPTIONS;
  delete env.LSAN_OPTIONS;
  return env;
}
