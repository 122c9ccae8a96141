#!/usr/bin/env node
/**
 * netns-kit-cni: a CNI plugin (spec 0.3.0-1.1.0) for bridge networks, built on netns-kit.
 * Install it where the runtime looks for plugins (e.g. /opt/cni/bin/netns-kit-cni) and set
 * `"type": "netns-kit-cni"` in the network configuration. Linked as `netns-kit-ipam` it is the
 * built-in address allocator as an IPAM plugin for any main plugin. See docs/cni.md.
 */
import path from 'node:path';
import { runPlugin } from '../lib/cni/plugin';

async function readStdin(): Promise<string> {
  // VERSION may come without stdin at all: a terminal means "nothing to read".
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
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
