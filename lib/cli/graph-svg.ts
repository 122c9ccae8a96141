/**
 * The topology picture as SVG, laid out by us: namespaces are boxes, their interfaces are pills in a
 * row inside the box (address under the name), bridge ports hang on a bus line to their bridge,
 * NAT rules are listed at the bottom of the box, and veth pairs are lines between pills.
 *
 * Layers, top to bottom: in each connected group the namespace with most veth pairs (the "host") is
 * the middle; what hangs on its bridges goes below it, what joins it by a plain veth (its uplink,
 * "the internet") goes above, and so on outwards. Within a layer, boxes follow the x of what they
 * connect to above, to keep lines from crossing. All text is escaped; the output is well-formed XML.
 */
import type { GraphEndpoint, GraphModel, GraphNamespace } from './graph-model';

const FONT = 12;
const CHAR_W = 7.3; // monospace at 12px
const LINE_H = 15;
const PAD = 10;
const TITLE_H = 24;
const PILL_GAP = 12;
const BUS_H = 18;
const BOX_GAP_X = 40;
const ROW_GAP_Y = 80;
const MARGIN = 24;
const MAX_ROW_W = 1800;
const WRAP_GAP_Y = 24;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    // characters XML 1.0 does not allow at all (control characters other than tab/newline)
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '?');
}

function textWidth(s: string): number {
  return [...s].length * CHAR_W;
}

interface PillBox {
  ifname: string;
  x: number; // relative to the box
  y: number;
  /** which line of pills (a box wider than MAX_ROW_W wraps its pills) */
  row: number;
  /** where this line's bridge bus runs */
  busY: number;
  w: number;
  h: number;
  lines: string[];
  kind: string;
  master?: string;
}

interface Box {
  ns: GraphNamespace;
  w: number;
  h: number;
  x: number;
  y: number;
  pills: PillBox[];
  hasBus: boolean;
  natTop: number;
  layer: number;
}

function measure(ns: GraphNamespace, links: GraphModel['links']): Box {
  // Uplinks first (left), then each bridge followed by its ports, then the rest.
  const bridges = ns.interfaces.filter((i) => i.kind === 'bridge');
  const ordered = [
    ...ns.interfaces.filter((i) => i.kind !== 'bridge' && !i.master && links.some((l) => isEnd(l.a, ns.name, i.name) || isEnd(l.b, ns.name, i.name))),
    ...bridges.flatMap((b) => [b, ...ns.interfaces.filter((i) => i.master === b.name)]),
  ];
  for (const i of ns.interfaces) if (!ordered.includes(i)) ordered.push(i);
  const hasBus = ordered.some((p) => p.master && ordered.some((q) => q.name === p.master));
  // Pills left to right, wrapping onto another line past MAX_ROW_W; each line leaves room under
  // it for the bus joining bridge ports to their bridge.
  const pills: PillBox[] = [];
  let x = PAD;
  let row = 0;
  let lineStart = 0;
  let widest = 0;
  let y = TITLE_H;
  const endLine = () => {
    const line = pills.slice(lineStart);
    if (!line.length) return;
    const h = Math.max(...line.map((p) => p.h));
    for (const p of line) p.busY = y + h + BUS_H / 2 + 2;
    y += h + (hasBus ? BUS_H : 0) + 6;
    lineStart = pills.length;
    row++;
    x = PAD;
  };
  for (const i of ordered) {
    const lines = [i.kind === 'veth' || i.kind === '' ? i.name : `${i.name} (${i.kind})`, ...i.addresses];
    const w = Math.ceil(Math.max(...lines.map(textWidth)) + 16);
    if (x > PAD && x + w > MAX_ROW_W) endLine();
    pills.push({ ifname: i.name, x, y, row, busY: 0, w, h: lines.length * LINE_H + 8, lines, kind: i.kind, master: i.master });
    x += w + PILL_GAP;
    widest = Math.max(widest, x - PILL_GAP + PAD);
  }
  endLine();
  const nat = ns.nat.map((n) => `NAT ${n}`);
  const title = ns.note ? `${ns.name}  (${ns.note})` : ns.name;
  const contentW = Math.max(textWidth(title) + 2 * PAD, widest, ...nat.map((t) => textWidth(t) + 2 * PAD), 120);
  const natTop = y + (pills.length ? 2 : 0);
  const h = natTop + nat.length * LINE_H + PAD;
  return { ns, w: Math.ceil(contentW), h, x: 0, y: 0, pills, hasBus, natTop, layer: 0 };
}

function isEnd(e: GraphEndpoint, ns: string, ifname: string): boolean {
  return e.netns === ns && e.ifname === ifname;
}

/** Signed layer per namespace: 0 for each group's hub, below (+) through its bridges, above (-) otherwise. */
function assignLayers(model: GraphModel, boxes: Map<string, Box>): void {
  const adj = new Map<string, Array<{ other: string; viaBridgePort: boolean }>>();
  for (const name of boxes.keys()) adj.set(name, []);
  const isPort = (e: GraphEndpoint) => Boolean(boxes.get(e.netns)?.ns.interfaces.find((i) => i.name === e.ifname)?.master);
  for (const l of model.links) {
    if (l.a.netns === l.b.netns) continue;
    adj.get(l.a.netns)?.push({ other: l.b.netns, viaBridgePort: isPort(l.a) });
    adj.get(l.b.netns)?.push({ other: l.a.netns, viaBridgePort: isPort(l.b) });
  }
  const done = new Set<string>();
  const names = [...boxes.keys()].sort((a, b) => adj.get(b)!.length - adj.get(a)!.length || a.localeCompare(b));
  let group = 0;
  for (const hub of names) {
    if (done.has(hub)) continue;
    const queue = [hub];
    done.add(hub);
    boxes.get(hub)!.layer = 0;
    const members = [hub];
    while (queue.length) {
      const cur = queue.shift()!;
      const layer = boxes.get(cur)!.layer;
      for (const { other, viaBridgePort } of adj.get(cur)!) {
        if (done.has(other)) continue;
        done.add(other);
        members.push(other);
        const dir = layer === 0 ? (viaBridgePort ? 1 : -1) : Math.sign(layer);
        boxes.get(other)!.layer = layer + dir;
        queue.push(other);
      }
    }
    // normalise the group so that its top layer is 0, and remember the group for ordering
    const min = Math.min(...members.map((m) => boxes.get(m)!.layer));
    for (const m of members) {
      const b = boxes.get(m)!;
      b.layer -= min;
      (b as Box & { group?: number }).group = group;
    }
    group++;
  }
}

function pillCenter(b: Box, ifname: string): { x: number; top: number; bottom: number } | undefined {
  const p = b.pills.find((q) => q.ifname === ifname);
  if (!p) return undefined;
  // Lines leave a box straight above or below the pill they belong to.
  return { x: b.x + p.x + p.w / 2, top: b.y, bottom: b.y + b.h };
}

export function renderSvg(model: GraphModel, title = 'netns-kit topology'): string {
  const boxes = new Map(model.namespaces.map((ns) => [ns.name, measure(ns, model.links)]));
  assignLayers(model, boxes);
  const rows: Box[][] = [];
  for (const b of boxes.values()) (rows[b.layer] ??= []).push(b);
  const groupOf = (b: Box) => (b as Box & { group?: number }).group ?? 0;

  // Rows top to bottom; within a row order by group, then by where the neighbours above sit.
  let y = MARGIN + 30;
  let width = 0;
  const visualRows: Box[][] = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] ?? [];
    const anchor = (b: Box): number => {
      const xs: number[] = [];
      for (const l of model.links) {
        const [mine, other] = l.a.netns === b.ns.name ? [l.a, l.b] : l.b.netns === b.ns.name ? [l.b, l.a] : [undefined, undefined];
        if (!mine || !other) continue;
        const ob = boxes.get(other.netns);
        if (ob && ob.layer < r) {
          const c = pillCenter(ob, other.ifname);
          if (c) xs.push(c.x);
        }
      }
      return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : Number.POSITIVE_INFINITY;
    };
    row.sort((a, b) => groupOf(a) - groupOf(b) || anchor(a) - anchor(b) || a.ns.name.localeCompare(b.ns.name));
    // A layer wider than MAX_ROW_W (a template of 200 alike namespaces) wraps onto more lines.
    let line: Box[] = [];
    let x = MARGIN;
    const flush = () => {
      if (!line.length) return;
      width = Math.max(width, x - BOX_GAP_X + MARGIN);
      y += Math.max(...line.map((b) => b.h)) + WRAP_GAP_Y;
      visualRows.push(line);
      line = [];
      x = MARGIN;
    };
    for (const b of row) {
      if (line.length && x + b.w > MAX_ROW_W) flush();
      b.x = x;
      b.y = y;
      x += b.w + BOX_GAP_X;
      line.push(b);
    }
    flush();
    if (row.length) y += ROW_GAP_Y - WRAP_GAP_Y;
  }
  // Centre each line under the widest one.
  for (const line of visualRows) {
    const lineW = line[line.length - 1].x + line[line.length - 1].w - line[0].x;
    const shift = (width - 2 * MARGIN - lineW) / 2;
    for (const b of line) b.x += shift;
  }
  const empty = boxes.size === 0;
  const height = empty ? MARGIN + 80 : y - ROW_GAP_Y + MARGIN + 20;
  const legend = 'boxes: namespaces · yellow: veth ends (lines join the pairs) · blue: bridges and their ports · purple: NAT rules';
  width = Math.max(width, textWidth(title) + 2 * MARGIN, textWidth(legend) + 2 * MARGIN);

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" font-family="ui-monospace, Menlo, Consolas, monospace" font-size="${FONT}">`);
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(
    '<style>.ns{fill:#f6f8fa;stroke:#57606a;stroke-width:1.2}.ns.outside{stroke-dasharray:5 4;fill:#ffffff}' +
      '.title{font-weight:bold;fill:#24292f}.pill{fill:#ffffff;stroke:#8c959f}.pill.bridge{fill:#ddf4ff;stroke:#0969da}' +
      '.pill.veth{fill:#fff8c5;stroke:#9a6700}.addr{fill:#0550ae}.nat{fill:#8250df}.link{stroke:#9a6700;stroke-width:2;fill:none}' +
      '.bus{stroke:#0969da;stroke-width:1.5;fill:none}.legend{fill:#57606a}</style>',
  );
  out.push(`<text class="title" x="${MARGIN}" y="${MARGIN + 4}">${escapeXml(title)}</text>`);
  out.push(`<text class="legend" x="${MARGIN}" y="${MARGIN + 20}">${escapeXml(legend)}</text>`);
  if (empty) out.push(`<text x="${MARGIN}" y="${MARGIN + 56}">(no namespaces)</text>`);

  // veth lines first, so boxes are drawn over their ends
  for (const l of model.links) {
    const ba = boxes.get(l.a.netns);
    const bb = boxes.get(l.b.netns);
    if (!ba || !bb) continue;
    const ca = pillCenter(ba, l.a.ifname);
    const cb = pillCenter(bb, l.b.ifname);
    if (!ca || !cb) continue;
    const label = `${l.a.netns}/${l.a.ifname} — ${l.b.netns}/${l.b.ifname}`;
    let d: string;
    if (ba.layer === bb.layer) {
      // same row (or same namespace): a curve below the boxes
      const low = Math.max(ca.bottom, cb.bottom) + 30;
      d = `M ${ca.x} ${ca.bottom} C ${ca.x} ${low}, ${cb.x} ${low}, ${cb.x} ${cb.bottom}`;
    } else {
      const [up, down] = ba.layer < bb.layer ? [ca, cb] : [cb, ca];
      const mid = (up.bottom + down.top) / 2;
      d = `M ${up.x} ${up.bottom} C ${up.x} ${mid}, ${down.x} ${mid}, ${down.x} ${down.top}`;
    }
    out.push(`<path class="link" d="${d}"><title>${escapeXml(`veth ${label}`)}</title></path>`);
  }

  for (const b of boxes.values()) {
    const outside = b.ns.note && b.ns.note.startsWith('not shown');
    out.push(`<g transform="translate(${b.x.toFixed(1)} ${b.y.toFixed(1)})">`);
    out.push(`<rect class="ns${outside ? ' outside' : ''}" width="${b.w}" height="${b.h}" rx="8"/>`);
    out.push(`<text class="title" x="${PAD}" y="17">${escapeXml(b.ns.name)}${b.ns.note ? `<tspan class="legend" font-weight="normal">  (${escapeXml(b.ns.note)})</tspan>` : ''}</text>`);
    for (const p of b.pills) {
      const cls = p.kind === 'bridge' ? 'pill bridge' : p.kind === 'veth' ? 'pill veth' : 'pill';
      out.push(`<rect class="${cls}" x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" rx="6"/>`);
      p.lines.forEach((line, i) => {
        out.push(`<text${i ? ' class="addr"' : ''} x="${p.x + 8}" y="${p.y + 16 + i * LINE_H}">${escapeXml(line)}</text>`);
      });
    }
    if (b.hasBus) {
      // bridge ports hang on a bus line under their line of pills, with a drop to their bridge;
      // when the pills wrap, the lines' buses are joined at the box's left edge
      for (const bridge of b.pills.filter((p) => p.kind === 'bridge')) {
        const members = [bridge, ...b.pills.filter((p) => p.master === bridge.ifname)];
        if (members.length < 2) continue;
        const rows = [...new Set(members.map((p) => p.row))];
        const parts: string[] = members.map((p) => `M ${p.x + p.w / 2} ${p.y + p.h} V ${p.busY}`);
        for (const r of rows) {
          const inRow = members.filter((p) => p.row === r);
          const xs = inRow.map((p) => p.x + p.w / 2);
          const left = rows.length > 1 ? PAD / 2 : Math.min(...xs);
          parts.push(`M ${left} ${inRow[0].busY} H ${Math.max(...xs)}`);
        }
        if (rows.length > 1) {
          const ys = members.map((p) => p.busY);
          parts.push(`M ${PAD / 2} ${Math.min(...ys)} V ${Math.max(...ys)}`);
        }
        out.push(`<path class="bus" d="${parts.join(' ')}"><title>${escapeXml(`ports of ${bridge.ifname}`)}</title></path>`);
      }
    }
    b.ns.nat.forEach((n, i) => {
      out.push(`<text class="nat" x="${PAD}" y="${b.natTop + 12 + i * LINE_H}">${escapeXml(`NAT ${n}`)}</text>`);
    });
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
