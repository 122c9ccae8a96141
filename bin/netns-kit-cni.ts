#!/usr/bin/env node
/**
 * netns-kit-cni: a CNI plugin (spec 0.3.0-1.1.0) for bridge networks, built on netns-kit.
 * Install it where the runtime looks for plugins (e.g. /opt/cni/bin/netns-kit-cni) and set
 * `"type": "netns-kit-cni"` in the network configuration. Linked as `netns-kit-ipam` it is the
 * built-in address allocator as an IPAM plugin for any main plugin. See docs/cni.md.
 */
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { runPlugin } from '../lib/cni/plugin';

async function readStdin(): Promise<string> {
  // VERSION may come without stdin at all: a terminal means "nothing to read".
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const USAGE = `Usage: netns-kit-cni   (run by a container runtime, not by hand)

A CNI plugin (spec 0.3.0-1.1.0) for bridge networks: a drop-in for the reference \`bridge\` +
\`portmap\` plugins. The runtime passes CNI_COMMAND (ADD, DEL, CHECK, VERSION, GC, STATUS),
CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS and CNI_PATH in the environment and the network
configuration as JSON on stdin; the result or the spec's error JSON goes to stdout (exit 1 on error).
Linked as netns-kit-ipam it is the built-in address allocator as an IPAM plugin.

Install:  ln -sf "$(command -v netns-kit-cni)" /opt/cni/bin/netns-kit-cni
Try it:   CNI_COMMAND=VERSION netns-kit-cni </dev/null
Docs:     https://github.com/netns-kit/netns-kit/blob/main/docs/cni.md

Options:
  -h, --help   this help
  --version    the netns-kit version
`;

async function main(): Promise<void> {
  // Runtimes never pass arguments (CNI is environment + stdin); a person typing --help gets usage.
  const arg = process.argv[2];
  if (arg === '--help' || arg === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  if (arg === '--version' || arg === '-V') {
    // dist/bin/netns-kit-cni.js -> package.json two levels up
    const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`netns-kit-cni ${pkg.version}\n`);
    return;
  }
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (e) {
    process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', code: 5, msg: 'failed to read network configuration from stdin', details: (e as Error).message }));
    process.exit(1);
  }
  const out = await runPlugin(process.env, stdin, { invokedAs: path.basename(process.argv[1] ?? '') });
  // exit as soon as stdout is flushed: the addon's worker threads must not keep the runtime waiting
  process.stdout.write(out.stdout, () => process.exit(out.exitCode));
}

void main();
