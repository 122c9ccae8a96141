/** The topology FILE argument of up/down/status/graph: a path, or `-` for standard input. */
import { topology, type Topology } from '../index';

/** Reads all of standard input as text. */
async function readStdin(stream: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `-` reads the topology from stdin (`generate | netns-kit up -`): JSON when it starts with `{`,
 * YAML otherwise; errors name it "(stdin)". Anything else is a .json/.yaml/.yml file.
 */
export async function loadTopologyArg(arg: string): Promise<Topology> {
  if (arg !== '-') return topology.load(arg);
  const text = await readStdin();
  return topology.parse(text, text.trimStart().startsWith('{') ? 'json' : 'yaml', '(stdin)');
}

/** Like loadTopologyArg, for commands that also take a multi-host topology (`up`/`down --host`). */
export async function loadAnyTopologyArg(arg: string): ReturnType<typeof topology.loadAny> {
  if (arg !== '-') return topology.loadAny(arg);
  const text = await readStdin();
  return topology.parseAny(text, text.trimStart().startsWith('{') ? 'json' : 'yaml', '(stdin)');
}
