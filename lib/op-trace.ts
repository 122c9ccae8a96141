/**
 * NK_OP_TRACE=1: one stderr line per single operation (the JS side of native/op_trace.h), for
 * finding where a per-operation call's time goes: `nk-js OP total=..us` for each native call, and
 * `nk-js netns.create ...` with its phases. Off, it costs one boolean test per call.
 */
export const traceOn = process.env.NK_OP_TRACE !== undefined && process.env.NK_OP_TRACE !== '';

export function now(): number {
  return Number(process.hrtime.bigint()) / 1e3;
}

/** Phase timer: `mark('phase')` records the time since the previous mark; `print()` writes the line. */
export class PhaseTrace {
  private readonly t0 = now();
  private last = this.t0;
  private readonly parts: string[] = [];
  constructor(private readonly what: string) {}
  mark(phase: string): void {
    const t = now();
    this.parts.push(`${phase}=${Math.round(t - this.last)}us`);
    this.last = t;
  }
  print(): void {
    process.stderr.write(`nk-js ${this.what} total=${Math.round(now() - this.t0)}us ${this.parts.join(' ')}\n`);
  }
}
