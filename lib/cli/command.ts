/** The shape every `netns-kit` sub-command has, and how its --help is printed. */
import { GLOBAL_OPTIONS, type OptionSpec } from './args';
import type { Io } from './output';

export interface Context {
  io: Io;
  /** aborted on Ctrl-C / SIGTERM: commands stop, roll back, and throw Interrupted */
  signal: AbortSignal;
  /** set by a command whose normal way to end is Ctrl-C (`status --watch`): then it is no error */
  signalEndsNormally?: boolean;
}

export interface Command {
  name: string;
  /** one line for the command list */
  summary: string;
  /** usage lines without the leading "netns-kit " */
  usage: string[];
  /** paragraphs after the usage */
  description: string;
  options: OptionSpec[];
  examples: string[];
  /**
   * When true, main() does not turn Ctrl-C into an abort: the command (exec) lets its child
   * handle the signal and reports the child's exit status.
   */
  passSignals?: boolean;
  /** Runs the command; returns the exit code. */
  run(argv: string[], ctx: Context): Promise<number>;
}

function optionLine(o: OptionSpec): [string, string] {
  const names = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  const choices = o.choices ? ` (${o.choices.join(', ')})` : '';
  return [names, o.description + choices];
}

export function commandHelp(c: Command): string {
  const usage = c.usage.map((u, i) => `${i === 0 ? 'Usage: ' : '       '}netns-kit ${u}`).join('\n');
  const opts = [...c.options, ...GLOBAL_OPTIONS].map(optionLine);
  const w = Math.max(...opts.map(([n]) => n.length));
  const optText = opts.map(([n, d]) => `  ${n.padEnd(w)}  ${d}`).join('\n');
  const examples = c.examples.map((e) => `  ${e}`).join('\n');
  return `${usage}\n\n${c.summary}\n\n${c.description.trim()}\n\nOptions:\n${optText}\n\nExamples:\n${examples}\n`;
}
