/** `netns-kit list`: the named namespaces with their links and addresses (`ip netns list` + `ip -br addr`). */
import { netns, NetnsError, type Netns } from '../index';
import { expectPositionals, parseArgs } from './args';
import type { Command } from './command';
import { EXIT } from './cli-errors';
import { requireNetworkPrivileges } from '../privileges';
import { printJson, table } from './output';

export interface NamespaceSummary {
  name: string;
  links: { name: string; kind: string; up: boolean; master?: string; peer?: string }[];
  addresses: string[];
  /** set when the namespace could not be read (e.g. a stale /run/netns entry) */
  error?: string;
  /** the error's code (EPERM makes the whole command fail) */
  errorCode?: string;
}

/** Reads one namespace; never throws, so one broken entry does not hide the others. */
export async function summarize(ns: Netns<string>): Promise<NamespaceSummary> {
  try {
    const [links, addrs] = await Promise.all([ns.links.list(), ns.addresses.list()]);
    return {
      name: ns.name,
      links: links.map((l) => ({
        name: l.name,
        kind: l.kind,
        up: l.up,
        ...(l.master ? { master: l.master } : {}),
        ...(l.peer?.netns ? { peer: `${l.peer.netns}` } : {}),
      })),
      addresses: addrs.filter((a) => a.scope !== 'host' && a.scope !== 'link').map((a) => `${a.cidr} ${a.dev}`),
    };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return { name: ns.name, links: [], addresses: [], error: (e as Error).message, ...(typeof code === 'string' ? { errorCode: code } : {}) };
  } finally {
    ns.release(); // one socket per namespace would add up to thousands of fds on a big host
  }
}

/** Maps with at most `limit` calls in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const listCommand: Command = {
  name: 'list',
  summary: 'List the named network namespaces with their links and addresses.',
  usage: ['list [--match PREFIX] [--json]'],
  description: `
Shows every namespace under /run/netns (netns-kit's and those made with \`ip netns add\`), its links
(lo omitted) and its global addresses. Equivalent to: \`ip netns list\` then \`ip -n NAME -br addr\` for each.`,
  options: [
    { name: 'match', type: 'string', value: 'PREFIX', description: 'only namespaces whose name starts with PREFIX' },
    { name: 'json', type: 'boolean', description: 'print JSON for scripts' },
  ],
  examples: ['netns-kit list', 'netns-kit list --match nkdemo- --json | jq -r ".[].name"'],
  async run(argv, ctx) {
    const a = parseArgs(argv, this.options, this.name);
    expectPositionals(a, 0, 0, '', this.name);
    // Reading a namespace's links needs the same privileges as changing them: without them every
    // row would only say EPERM, so the command fails as a whole (exit 5) like every other command.
    requireNetworkPrivileges('netns-kit list');
    const prefix = (a.options.match as string | undefined) ?? '';
    const all = (await netns.list()).filter((n) => n.name.startsWith(prefix));
    const summaries = await mapLimit(all, 16, summarize);
    const denied = summaries.find((s) => s.errorCode === 'EPERM' || s.errorCode === 'EACCES');
    if (denied) throw new NetnsError(denied.errorCode as 'EPERM', `${denied.error} (netns ${denied.name})`, { netns: denied.name, syscall: 'list' });
    if (a.options.json) {
      printJson(ctx.io, summaries);
      return EXIT.OK;
    }
    if (summaries.length === 0) {
      ctx.io.stdout.write(prefix ? `no namespace starts with ${prefix}\n` : 'no named network namespaces\n');
      return EXIT.OK;
    }
    const rows = summaries.map((s) => [
      s.name,
      s.error ? `(${s.error})` : s.links.filter((l) => l.kind !== 'loopback').map((l) => `${l.name}${l.up ? '' : '(down)'}`).join(' ') || '-',
      s.addresses.map((x) => x.split(' ')[0]).join(' ') || '-',
    ]);
    ctx.io.stdout.write(table(['NAMESPACE', 'LINKS', 'ADDRESSES'], rows));
    return EXIT.OK;
  },
};
