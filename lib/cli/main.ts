/**
 * `netns-kit` entry: picks the sub-command, turns Ctrl-C into an abort the command rolls back on,
 * and turns any error into one readable line and an exit code (the stack only with --debug).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { commandHelp, type Command, type Context } from './command';
import { EXIT, EXIT_CODE_HELP, Interrupted, UsageError, exitCodeFor, formatError } from './cli-errors';
import { processIo, type Io } from './output';
import { COMMANDS } from './commands';

export function version(): string {
  // dist/lib/cli/main.js -> package.json at the package root (three levels up)
  const pkg = JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export function generalHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  const list = COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`).join('\n');
  return `Usage: netns-kit COMMAND [OPTIONS] [ARGS]

Network namespaces, veth links, bridges and nftables NAT, from the command line. Run as root.

Commands:
${list}

Options for every command:
  -h, --help   help for that command (netns-kit COMMAND --help)
  --debug      print the stack trace of an error
  --version    print the version

Examples:
  netns-kit demo                    # the whole namespaces tutorial, live, verified and removed again
  netns-kit up lab.yaml             # create a topology from a file
  netns-kit status lab.yaml         # show it, and whether it still matches the file
  netns-kit graph lab.yaml -o lab.svg
  netns-kit exec red -- ping -c1 192.168.15.2

${EXIT_CODE_HELP}
`;
}

function find(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Runs the command line `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const debug = argv.includes('--debug');
  const [first, ...rest] = argv;
  let command: Command | undefined;
  try {
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
      const topic = first === 'help' ? rest[0] : undefined;
      const c = topic ? find(topic) : undefined;
      if (topic && !c) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
      io.stdout.write(c ? commandHelp(c) : generalHelp());
      return first === undefined ? EXIT.USAGE : EXIT.OK;
    }
    if (first === '--version' || first === '-V') {
      io.stdout.write(`netns-kit ${version()}\n`);
      return EXIT.OK;
    }
    // `netns-kit --debug CMD ...`: the flag goes right after the command, before any `--`.
    if (first === '--debug') return await main(rest.length ? [rest[0], '--debug', ...rest.slice(1)] : [], io);
    command = find(first);
    if (!command) throw new UsageError(first.startsWith('-') ? `unknown option ${first}` : `unknown command ${JSON.stringify(first)}`);
    // --help anywhere before `--` asks for help, so `netns-kit up --help` never touches the kernel.
    const beforeDashDash = rest.indexOf('--') >= 0 ? rest.slice(0, rest.indexOf('--')) : rest;
    if ((beforeDashDash.includes('--help') || beforeDashDash.includes('-h')) && !(command.passSignals && beforeDashDash.some((a) => !a.startsWith('-')))) {
      io.stdout.write(commandHelp(command));
      return EXIT.OK;
    }
    return await runWithSignals(command, rest, io);
  } catch (e) {
    io.stderr.write(formatError(e, command?.name) + '\n');
    if (debug && e instanceof Error && e.stack) io.stderr.write(e.stack + '\n');
    return exitCodeFor(e);
  }
}

/**
 * First Ctrl-C: abort, the command removes what it made. Second: say that clean-up is running.
 * Third: give up at once (things may be left; `netns-kit gc` finds them).
 */
async function runWithSignals(command: Command, args: string[], io: Io): Promise<number> {
  if (command.passSignals) return command.run(args, { io, signal: new AbortController().signal });
  const controller = new AbortController();
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) controller.abort(new Interrupted(signal));
    else if (count === 2) io.stderr.write('\nnetns-kit: removing what was made; press Ctrl-C again to stop at once (then run `netns-kit gc`)\n');
    else process.exit(EXIT.INTERRUPTED);
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal).on('SIGHUP', onSignal);
  try {
    const ctx: Context = { io, signal: controller.signal };
    let code: number;
    try {
      code = await command.run(args, ctx);
    } catch (e) {
      // Ctrl-C reaches the whole process group: the helpers a command started (the demo's servers,
      // ping) die of it too, and the step that used them fails. That failure is the interrupt's
      // consequence, not a finding: report the interrupt (exit 130), never a false check failure.
      if (controller.signal.aborted && !(e instanceof UsageError)) throw controller.signal.reason;
      throw e;
    }
    if (controller.signal.aborted && !ctx.signalEndsNormally) throw controller.signal.reason;
    return code;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal).off('SIGHUP', onSignal);
  }
}
