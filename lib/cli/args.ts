/**
 * A small command-line parser of our own: long options (`--json`, `--format svg`, `--format=svg`),
 * short aliases (`-o out.svg`), positionals, and `--` after which everything belongs to the user's
 * command (what `exec` passes on untouched). Anything it does not know is a usage error, so a typo
 * never silently changes what a command does.
 */
import { UsageError } from './cli-errors';

export interface OptionSpec {
  /** long name without dashes: "dry-run" */
  name: string;
  /** one-letter alias without the dash: "o" */
  short?: string;
  /** boolean flags take no value; string options take exactly one */
  type: 'boolean' | 'string';
  /** for string options: the accepted values (anything else is a usage error) */
  choices?: readonly string[];
  /** placeholder shown in help: FILE, NAME */
  value?: string;
  description: string;
}

export interface ParsedArgs {
  options: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** everything after `--` (only when the command accepts it) */
  rest: string[];
  /** true when `--` was given */
  sawDashDash: boolean;
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
  { name: 'debug', type: 'boolean', description: 'print the stack trace of an error' },
];

/**
 * Parses `argv` against `specs`. With `stopAfter` = n, everything after the n-th positional is left
 * uninterpreted in `rest` (`exec NAME cmd -x` works with or without `--`, like `ip netns exec`).
 */
export function parseArgs(argv: readonly string[], specs: readonly OptionSpec[], command: string, stopAfter?: number): ParsedArgs {
  const all = [...specs, ...GLOBAL_OPTIONS];
  const byLong = new Map(all.map((s) => [s.name, s]));
  const byShort = new Map(all.filter((s) => s.short).map((s) => [s.short!, s]));
  const out: ParsedArgs = { options: {}, positionals: [], rest: [], sawDashDash: false };

  const take = (spec: OptionSpec, inline: string | undefined, i: number): number => {
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`option --${spec.name} takes no value`, command);
      out.options[spec.name] = true;
      return i;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option --${spec.name} needs a value (${spec.value ?? 'VALUE'})`, command);
      value = argv[++i];
    }
    if (spec.choices && !spec.choices.includes(value)) {
      throw new UsageError(`option --${spec.name} must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(value)}`, command);
    }
    if (out.options[spec.name] !== undefined) throw new UsageError(`option --${spec.name} given twice`, command);
    out.options[spec.name] = value;
    return i;
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.sawDashDash = true;
      out.rest = argv.slice(i + 1);
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown option --${name}`, command);
      i = take(spec, eq >= 0 ? a.slice(eq + 1) : undefined, i);
    } else if (a.startsWith('-') && a.length > 1) {
      const spec = byShort.get(a.slice(1, 2));
      if (!spec) throw new UsageError(`unknown option ${a}`, command);
      // -ofile.svg is accepted like getopt does; -o file.svg too.
      i = take(spec, a.length > 2 ? a.slice(2) : undefined, i);
    } else {
      out.positionals.push(a);
      if (stopAfter !== undefined && out.positionals.length === stopAfter) {
        out.rest = argv.slice(argv[i + 1] === '--' ? i + 2 : i + 1);
        out.sawDashDash = argv[i + 1] === '--';
        break;
      }
    }
  }
  return out;
}

/** Throws a usage error unless there are between min and max positionals. */
export function expectPositionals(p: ParsedArgs, min: number, max: number, names: string, command: string): void {
  if (p.positionals.length < min) throw new UsageError(`missing ${names}`, command);
  if (p.positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[max])}`, command);
}
