/** Topology files: JSON (.json) or YAML (.yaml, .yml), validated on load. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type * as Yaml from 'yaml';
import { invalid } from '../errors';
import type { Topology } from './schema';
import { validate } from './validate';
import { isMultiHost, validateMultiHost, type MultiHostTopology } from './multihost';

/** Parses topology text; `format` by file extension. Throws ERR_NETNS_INVALID_TOPOLOGY on a syntax or schema error. */
export function parse(text: string, format: 'json' | 'yaml', file = '(text)'): Topology {
  return checked(parseValue(text, format, file), file, validate);
}

/**
 * The YAML parser, loaded on the first YAML text: it is a third of what `require('netns-kit')`
 * costs (about 35 ms of 90), and most programs never read a YAML topology.
 */
let yaml: typeof Yaml | undefined;
function yamlModule(): typeof Yaml {
  return (yaml ??= require('yaml') as typeof Yaml);
}

/** Topology text as a plain value, not yet checked against a schema. */
function parseValue(text: string, format: 'json' | 'yaml', file: string): unknown {
  try {
    // YAML 1.2 core schema: "on"/"yes" stay strings, as in JSON; no custom tags.
    return format === 'json' ? JSON.parse(text) : yamlModule().parse(text, { schema: 'core', uniqueKeys: true, prettyErrors: true });
  } catch (e) {
    const where = format === 'yaml' && e instanceof yamlModule().YAMLParseError && e.linePos ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
    throw invalid('ERR_NETNS_INVALID_TOPOLOGY', `${file}${where}: not valid ${format.toUpperCase()}: ${(e as Error).message.split('\n')[0]}`, { detail: file });
  }
}

function checked<T>(value: unknown, file: string, check: (v: unknown) => T): T {
  try {
    return check(value);
  } catch (e) {
    if (e instanceof Error) e.message = `${file}: ${e.message}`;
    throw e;
  }
}

/** Reads and validates a topology file (.json, .yaml or .yml). */
export async function load(file: string): Promise<Topology> {
  const { text, format } = await read(file);
  return parse(text, format, file);
}

/**
 * Reads a topology file that may be a multi-host one (multihost.ts: it has `hosts`) or an
 * ordinary one, validated as what it is.
 */
export async function loadAny(file: string): Promise<{ multiHost: MultiHostTopology } | { topology: Topology }> {
  const { text, format } = await read(file);
  return parseAny(text, format, file);
}

/** Parses topology text that may be a multi-host topology or an ordinary one (see loadAny). */
export function parseAny(text: string, format: 'json' | 'yaml', file = '(text)'): { multiHost: MultiHostTopology } | { topology: Topology } {
  const value = parseValue(text, format, file);
  if (isMultiHost(value)) return { multiHost: checked(value, file, validateMultiHost) };
  return { topology: checked(value, file, validate) };
}

async function read(file: string): Promise<{ text: string; format: 'json' | 'yaml' }> {
  const ext = path.extname(file).toLowerCase();
  const format = ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  if (!format) throw invalid('ERR_NETNS_INVALID_TOPOLOGY', `${file}: topology files end in .json, .yaml or .yml`, { detail: file });
  try {
    return { text: await fs.readFile(file, 'utf8'), format };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw invalid('ERR_NETNS_INVALID_TOPOLOGY', `${file}: cannot read: ${err.code ?? err.message}`, { detail: file });
  }
}
