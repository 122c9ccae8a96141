/**
 * Runs the `netns-kit` command the way a user does: `node dist/bin/netns-kit.js ARGS` as a
 * subprocess (optionally on a pseudo-terminal through util-linux `script`), and checks SVG
 * well-formedness with an XML parser that is not ours (python3's xml.etree).
 */
import { execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PYTHON, peerEnv } from './peers';

/** dist/test/support/cli.js -> dist/bin/netns-kit.js */
export const BIN = path.resolve(__dirname, '..', '..', 'bin', 'netns-kit.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions extends Omit<SpawnOptions, 'stdio'> {
  /** called for each chunk of stderr (e.g. to send Ctrl-C at the right moment) */
  onStderr?: (text: string, child: ReturnType<typeof spawn>) => void;
  onStdout?: (text: string, child: ReturnType<typeof spawn>) => void;
  /** called once the child is started (e.g. to watch for a namespace it creates) */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
}

export function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const { onStderr, onStdout, onSpawn, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * Runs the command on a pseudo-terminal: `script -qec "node BIN ARGS" /dev/null` (util-linux).
 * stdout and stderr both arrive on the terminal, so they come back together in `stdout`.
 */
export function cliOnTty(args: string[], env: NodeJS.ProcessEnv = process.env, terminal: { term?: string; ci?: boolean } = {}): Promise<CliResult> {
  // A capable terminal unless asked otherwise: the run's own TERM (dumb under some agents) and CI
  // (set in CI) would turn the progress bar off.
  const ttyEnv: NodeJS.ProcessEnv = { ...env, COLUMNS: '100', TERM: terminal.term ?? 'xterm-256color' };
  if (terminal.ci) ttyEnv.CI = 'true';
  else delete ttyEnv.CI;
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, BIN, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: ttyEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/**
 * Parses `svg` with python3's xml.etree (an independent XML parser) and returns every text it
 * holds (text content and <title> elements), or throws with the parser's message.
 */
export function svgTexts(svg: string): string[] {
  const script = `
import sys, json, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag
print(json.dumps([t for t in root.itertext()]))
`;
  const out = execFileSync(PYTHON, ['-c', script], { input: svg, encoding: 'utf8', env: peerEnv() });
  return JSON.parse(out) as string[];
}

export const PACKAGE_VERSION = (JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
