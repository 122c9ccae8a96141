/** The graph of a topology file (waits for branch topo). */
import { UsageError } from './cli-errors';
import type { GraphModel } from './graph-model';

export async function topologyModel(file: string): Promise<{ model: GraphModel; title: string }> {
  throw new UsageError(`drawing a topology file (${file}) needs the topology API, not merged yet`, 'graph');
}
