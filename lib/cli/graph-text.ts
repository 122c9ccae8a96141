/**
 * The topology as Mermaid (paste into Markdown on GitHub) or Graphviz DOT (`dot -Tpng`): one
 * subgraph per namespace, a node per interface (name, kind, addresses), a node for its NAT rules,
 * solid edges for veth pairs and dotted edges from bridge ports to their bridge.
 */
import type { GraphModel, GraphNamespace } from './graph-model';

/** Stable identifiers for the graph languages, whatever the names contain. */
function ids(model: GraphModel): { ns: Map<string, string>; iface: (ns: string, ifname: string) => string } {
  const ns = new Map(model.namespaces.map((n, i) => [n.name, `ns${i}`]));
  const ifaceIds = new Map<string, string>();
  model.namespaces.forEach((n, i) => n.interfaces.forEach((f, j) => ifaceIds.set(`${n.name}\0${f.name}`, `ns${i}_if${j}`)));
  return { ns, iface: (n, f) => ifaceIds.get(`${n}\0${f}`) ?? `missing_${ns.get(n) ?? 'ns'}` };
}

function ifaceLines(f: GraphNamespace['interfaces'][number]): string[] {
  return [f.kind && f.kind !== 'veth' ? `${f.name} (${f.kind})` : f.name, ...f.addresses];
}

/** Mermaid label text: quotes and angle brackets become entity codes, lines join with <br/>. */
function mermaidLabel(lines: string[]): string {
  return lines.map((l) => l.replace(/[#"<>&]/g, (c) => ({ '#': '#35;', '"': '#quot;', '<': '#lt;', '>': '#gt;', '&': '#amp;' })[c]!)).join('<br/>');
}

export function renderMermaid(model: GraphModel): string {
  const id = ids(model);
  const out = ['flowchart TB'];
  for (const n of model.namespaces) {
    const nid = id.ns.get(n.name)!;
    out.push(`  subgraph ${nid}["${mermaidLabel([n.note ? `${n.name} (${n.note})` : n.name])}"]`);
    for (const f of n.interfaces) out.push(`    ${id.iface(n.name, f.name)}["${mermaidLabel(ifaceLines(f))}"]`);
    if (n.nat.length) out.push(`    ${nid}_nat["${mermaidLabel(n.nat.map((r) => `NAT ${r}`))}"]`);
    if (!n.interfaces.length && !n.nat.length) out.push(`    ${nid}_empty["(no links)"]`);
    out.push('  end');
  }
  for (const n of model.namespaces) {
    for (const f of n.interfaces) {
      if (f.master && n.interfaces.some((b) => b.name === f.master)) out.push(`  ${id.iface(n.name, f.name)} -.-|port| ${id.iface(n.name, f.master)}`);
    }
  }
  for (const l of model.links) out.push(`  ${id.iface(l.a.netns, l.a.ifname)} ---|veth| ${id.iface(l.b.netns, l.b.ifname)}`);
  return out.join('\n') + '\n';
}

/** DOT string literal: backslash and quote escaped, lines joined with \n. */
function dotString(lines: string[]): string {
  return `"${lines.map((l) => l.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/[\r\n]/g, ' ')).join('\\n')}"`;
}

export function renderDot(model: GraphModel, title = 'netns-kit topology'): string {
  const id = ids(model);
  const out = [
    'graph netns {',
    `  label=${dotString([title])}; labelloc=t; rankdir=TB; fontname="monospace";`,
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="monospace", fontsize=10];',
    '  edge [fontname="monospace", fontsize=9];',
  ];
  for (const n of model.namespaces) {
    const nid = id.ns.get(n.name)!;
    out.push(`  subgraph cluster_${nid} {`);
    out.push(`    label=${dotString([n.note ? `${n.name} (${n.note})` : n.name])}; style="rounded${n.note?.startsWith('not shown') ? ',dashed' : ''}"; color="#57606a";`);
    for (const f of n.interfaces) {
      const fill = f.kind === 'bridge' ? '#ddf4ff' : f.kind === 'veth' ? '#fff8c5' : '#ffffff';
      out.push(`    ${id.iface(n.name, f.name)} [label=${dotString(ifaceLines(f))}, fillcolor="${fill}"];`);
    }
    if (n.nat.length) out.push(`    ${nid}_nat [shape=note, label=${dotString(n.nat.map((r) => `NAT ${r}`))}, fontcolor="#8250df"];`);
    if (!n.interfaces.length && !n.nat.length) out.push(`    ${nid}_empty [label="(no links)", style=invis];`);
    out.push('  }');
  }
  for (const n of model.namespaces) {
    for (const f of n.interfaces) {
      if (f.master && n.interfaces.some((b) => b.name === f.master)) out.push(`  ${id.iface(n.name, f.name)} -- ${id.iface(n.name, f.master)} [style=dotted, label="port"];`);
    }
  }
  for (const l of model.links) out.push(`  ${id.iface(l.a.netns, l.a.ifname)} -- ${id.iface(l.b.netns, l.b.ifname)} [penwidth=2, color="#9a6700", label="veth"];`);
  out.push('}');
  return out.join('\n') + '\n';
}
