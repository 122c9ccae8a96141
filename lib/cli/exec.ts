/** `netns-kit exec NAME -- cmd args...`: runs a command inside a namespace, passing its exit code through. */
import { constants } from 'node:os';
import { netns } from '../index';
import { parseArgs } from './args';
import type { Command } from './command';
import { UsageError } from './cli-errors';
import { NetnsError } from '../errors';
import { requireNetworkPrivileges } from '../privileges';

/** exec enters the namespace through nsenter(1): without it, say so (not "no such namespace"). */
function nsenterMissing(): NetnsError {
  return new NetnsError('ENOENT', 'ENOENT: nsenter not found in PATH, spawn nsenter: netns-kit exec runs the command through nsenter(1); install util-linux (Debian/Ubuntu/Fedora: util-linux; Alpine: util-linux-misc)', {
    errno: -2,
    syscall: 'spawn nsenter',
  });
}

export const execCommand: Command = {
  name: 'exec',
  summary: 'Run a command inside a namespace; its exit code is passed through.',
  usage: ['exec NAME -- COMMAND [ARGS...]'],
  description: `
Runs COMMAND with stdin, stdout and stderr of the terminal inside namespace NAME (no shell: the
arguments reach the command as they are). The exit code is the command's own; a command killed by a
signal gives 128 + the signal number, as a shell reports it. Everything after NAME (and the optional
\`--\`) belongs to COMMAND. Equivalent to: \`ip netns exec NAME COMMAND ARGS...\``,
  options: [],
  passSignals: true,
  examples: ['netns-kit exec red -- ping -c1 192.168.15.2', 'netns-kit exec red -- ip addr', 'netns-kit exec blue -- sh -c "echo $$; ip route"'],
  async run(argv) {
    const a = parseArgs(argv, this.options, this.name, 1);
    if (a.positionals.length === 0) throw new UsageError('missing namespace NAME', this.name);
    if (a.rest.length === 0) throw new UsageError('missing COMMAND after the namespace name', this.name);
    requireNetworkPrivileges('netns-kit exec');
    const ns = await netns.open(a.positionals[0]);
    const [cmd, ...args] = a.rest;
    const child = ns.spawn(cmd, args, { stdio: 'inherit' });
    // The terminal sends Ctrl-C to the whole process group: the child decides what it means, and we
    // stay alive to report how it ended. A SIGTERM/SIGHUP sent to us alone is passed on to it.
    const ignore = () => undefined;
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', ignore).on('SIGTERM', forward).on('SIGHUP', forward);
    try {
      return await new Promise<number>((resolve, reject) => {
        child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' && e.path === 'nsenter' ? nsenterMissing() : e));
        child.on('close', (code, signal) => {
          if (signal) resolve(128 + (constants.signals[signal] ?? 0));
          else resolve(code ?? 1);
        });
      });
    } finally {
      process.off('SIGINT', ignore).off('SIGTERM', forward).off('SIGHUP', forward);
    }
  },
};
