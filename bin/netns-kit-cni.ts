#!/usr/bin/env node
/**
 * netns-kit-cni: a CNI plugin (spec 0.3.0-1.1.0) for bridge networks, built on netns-kit.
 * Install it where the runtime looks for plugins (e.g. /opt/cni/bin/netns-kit-cni) and set
 * `"type": "netns-kit-cni"` in the network configuration. Linked as `netns-kit-ipam` it is the
 * built-in address allocator as an IPAM plugin for any main plugin. See docs/cni.md.
 */
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { runPlugin } from '../lib/cni/plugin';

/**
 * The native client (build/Release/netns-kit-cni) runs this file when no resident helper serves
 * the call, and says in this variable the name it was invoked by (netns-kit-cni or
 * netns-kit-ipam), which argv[1] no longer shows. It is not passed on to delegated plugins.
 */
const INVOKED_AS = 'NETNS_KIT_CNI_INVOKED_AS';
const ROOT = path.resolve(__dirname, '..', '..'); // dist/bin/netns-kit-cni.js -> the package

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

Install:  ln -sf "$(netns-kit-cni --client-path)" /opt/cni/bin/netns-kit-cni
Try it:   CNI_COMMAND=VERSION netns-kit-cni </dev/null
Docs:     https://github.com/netns-kit/netns-kit/blob/main/docs/cni.md

Options:
  -h, --help      this help
  --version       the netns-kit version
  --client-path   the native client to install as the plugin (it hands calls to a resident
                  helper when one runs, and runs this plugin itself when none does)
  --serve         run as the resident helper on $NETNS_KIT_CNI_RUN_DIR/resident.sock
                  (default /run/netns-kit-cni); SIGTERM or SIGINT stops it
  --verbose       with --serve: a line on stderr per call served or declined
`;

/** The resident helper in the foreground, until SIGTERM/SIGINT. */
async function serve(verbose: boolean): Promise<void> {
  // Loaded only here: a plugin call never needs the server.
  const { serveResident } = require('../lib/cni/resident') as typeof import('../lib/cni/resident');
  const log = verbose ? (line: string) => process.stderr.write(`netns-kit-cni: ${line}\n`) : undefined;
  const server = await serveResident({ log });
  process.stdout.write(`netns-kit-cni: resident helper listening on ${server.socketPath}\n`);
  const stop = () => {
    void server.close().then(() => {
      process.stdout.write(`netns-kit-cni: stopped after ${server.stats.served} calls served, ${server.stats.declined} declined\n`);
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(): Promise<void> {
  // Runtimes never pass arguments (CNI is environment + stdin); a person typing --help gets usage.
  const arg = process.argv[2];
  const invokedAs = process.env[INVOKED_AS] || path.basename(process.argv[1] ?? '');
  delete process.env[INVOKED_AS];
  if (arg === '--serve') {
    try {
      await serve(process.argv.includes('--verbose'));
    } catch (e) {
      process.stderr.write(`netns-kit-cni: ${(e as Error).message}\n`);
      process.exit(1);
    }
    return;
  }
  if (arg === '--client-path') {
    // Compiled from source at install, or shipped prebuilt beside the addon.
    const candidates = [path.join(ROOT, 'build', 'Release', 'netns-kit-cni'), path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'netns-kit-cni')];
    const client = candidates.find((c) => existsSync(c));
    if (!client) {
      process.stderr.write(`netns-kit-cni: the native client is missing (${candidates.join(', ')}); install ${__filename} as the plugin instead\n`);
      process.exit(1);
    }
    process.stdout.write(`${client}\n`);
    return;
  }
  if (arg === '--help' || arg === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  if (arg === '--version' || arg === '-V') {
    // dist/bin/netns-kit-cni.js -> package.json two levels up
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
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
  const out = await runPlugin(process.env, stdin, { invokedAs });
  // exit as soon as stdout is flushed: the addon's worker threads must not keep the runtime waiting
  process.stdout.write(out.stdout, () => process.exit(out.exitCode));
}

void main();
