#!/usr/bin/env node
// The `netns-kit` command (package.json "bin"). Everything lives in lib/cli/; this file only runs it.
import { main } from '../lib/cli/main';

// `netns-kit demo | head`: once the reader is gone, writes fail with EPIPE. That must not kill the
// process half-way, or it would leave its namespaces behind; the output is dropped instead.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // main() reports its own errors; reaching this means the reporter itself failed.
    process.stderr.write(`netns-kit: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
