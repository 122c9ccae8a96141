#!/usr/bin/env node
// The `netns-kit` command (package.json "bin"). Everything lives in lib/cli/; this file only runs it.
import { main } from '../lib/cli/main';

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
