/**
 * The template pattern language: text with `{EXPR}` or `{EXPR:WIDTH}` placeholders, EXPR an
 * integer expression over `i` with + - * / % and parentheses (`/` rounds down, as the address
 * arithmetic wants: `10.0.{i/256}.{i%256}`). No eval: a small recursive-descent parser compiles a
 * pattern once into a function of i.
 */

type Expr = (i: number) => number;

export class PatternError extends Error {}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Expr {
    const e = this.sum();
    this.skip();
    if (this.pos < this.src.length) throw new PatternError(`unexpected "${this.src[this.pos]}" in {${this.src}}`);
    return e;
  }

  private skip(): void {
    while (this.src[this.pos] === ' ') this.pos++;
  }

  private sum(): Expr {
    let left = this.product();
    for (;;) {
      this.skip();
      const op = this.src[this.pos];
      if (op !== '+' && op !== '-') return left;
      this.pos++;
      const l = left;
      const r = this.product();
      left = op === '+' ? (i) => l(i) + r(i) : (i) => l(i) - r(i);
    }
  }

  private product(): Expr {
    let left = this.atom();
    for (;;) {
      this.skip();
      const op = this.src[this.pos];
      if (op !== '*' && op !== '/' && op !== '%') return left;
      this.pos++;
      const l = left;
      const r = this.atom();
      if (op === '*') left = (i) => l(i) * r(i);
      else {
        const src = this.src;
        left = (i) => {
          const d = r(i);
          if (d === 0) throw new PatternError(`division by zero in {${src}}`);
          const n = l(i);
          return op === '/' ? Math.floor(n / d) : ((n % d) + d) % d;
        };
      }
    }
  }

  private atom(): Expr {
    this.skip();
    const c = this.src[this.pos];
    if (c === '(') {
      this.pos++;
      const e = this.sum();
      this.skip();
      if (this.src[this.pos] !== ')') throw new PatternError(`missing ")" in {${this.src}}`);
      this.pos++;
      return e;
    }
    if (c === '-') {
      this.pos++;
      const e = this.atom();
      return (i) => -e(i);
    }
    if (c === 'i') {
      this.pos++;
      return (i) => i;
    }
    const m = /^\d{1,9}/.exec(this.src.slice(this.pos));
    if (m) {
      this.pos += m[0].length;
      const v = Number(m[0]);
      return () => v;
    }
    throw new PatternError(c === undefined ? `expression ends too early in {${this.src}}` : `unexpected "${c}" in {${this.src}} (use i, integers, + - * / % and parentheses)`);
  }
}

/** A compiled pattern: `render(i)` gives the text for member i. */
export interface Pattern {
  source: string;
  /** true when the text contains at least one placeholder */
  varies: boolean;
  render(i: number): string;
}

/** Compiles a pattern; throws PatternError on a syntax error. */
export function compile(source: string): Pattern {
  const parts: Array<string | { expr: Expr; width: number }> = [];
  let rest = source;
  while (rest.length) {
    const open = rest.indexOf('{');
    const close = rest.indexOf('}');
    if (close >= 0 && (open < 0 || close < open)) throw new PatternError(`"}" without "{"`);
    if (open < 0) {
      parts.push(rest);
      break;
    }
    if (open > 0) parts.push(rest.slice(0, open));
    const end = rest.indexOf('}', open);
    if (end < 0) throw new PatternError(`"{" without "}"`);
    const inner = rest.slice(open + 1, end);
    const colon = inner.lastIndexOf(':');
    let width = 0;
    let exprText = inner;
    if (colon >= 0) {
      const w = inner.slice(colon + 1).trim();
      if (!/^\d{1,2}$/.test(w)) throw new PatternError(`bad width "${w}" in {${inner}} (e.g. {i:3})`);
      width = Number(w);
      exprText = inner.slice(0, colon);
    }
    if (!exprText.trim()) throw new PatternError(`empty placeholder {${inner}}`);
    parts.push({ expr: new Parser(exprText.trim()).parse(), width });
    rest = rest.slice(end + 1);
  }
  const varies = parts.some((p) => typeof p !== 'string');
  return {
    source,
    varies,
    render(i: number): string {
      let out = '';
      for (const p of parts) {
        if (typeof p === 'string') out += p;
        else {
          const v = p.expr(i);
          const neg = v < 0;
          const digits = String(Math.abs(v)).padStart(p.width - (neg ? 1 : 0), '0');
          out += neg ? `-${digits}` : digits;
        }
      }
      return out;
    },
  };
}
