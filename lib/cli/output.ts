/**
 * What the command prints: aligned tables, a progress bar on a terminal (plain lines when stderr is
 * a pipe or a file, so logs stay readable), durations. Results go to stdout, progress and errors
 * to stderr, so `netns-kit up f.yaml --json | jq` sees only JSON.
 */
import type { Writable } from 'node:stream';

export interface Io {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean; columns?: number };
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

/** Columns padded to the widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** "12 ms", "1.4 s" */
export function duration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

export interface Progress {
  done: number;
  total: number;
  step: string;
}

/**
 * A terminal that can redraw a line in place: a TTY whose TERM is not `dumb`, outside CI (CI logs
 * keep every carriage-return redraw as a line of its own).
 */
export function capableTerminal(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && env.TERM !== 'dumb' && !env.CI;
}

/**
 * Shows `onProgress` reports, on a capable terminal only: one line redrawn in place,
 * `[##########..........]  12/40  add link veth-red`. Elsewhere (a pipe, a file, TERM=dumb, CI)
 * nothing: the command's result line says what happened, and logs stay clean.
 */
export class ProgressReporter {
  private drawn = false;
  private readonly tty: boolean;

  constructor(
    private readonly stream: Io['stderr'],
    private readonly verb: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.tty = capableTerminal(stream, env);
  }

  update(p: Progress): void {
    if (this.tty) {
      const width = Math.max(40, Math.min(this.stream.columns || 80, 120));
      const counter = `${String(p.done).padStart(String(p.total).length)}/${p.total}`;
      const barWidth = Math.min(30, Math.max(10, width - counter.length - 30));
      const filled = p.total > 0 ? Math.round((p.done / p.total) * barWidth) : barWidth;
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
      let line = `${this.verb} ${bar} ${counter}  ${p.step}`;
      if (line.length > width - 1) line = line.slice(0, width - 2) + '…';
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    }
  }

  /** Clears the bar so the final message starts on a clean line. */
  finish(): void {
    if (this.tty && this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}

/** JSON for scripts: one document, two-space indented, newline-terminated. */
export function printJson(io: Io, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}
