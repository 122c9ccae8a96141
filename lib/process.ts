/**
 * Processes inside a namespace. The child enters the namespace itself (nsenter(1) from util-linux,
 * which calls setns and then execs the command), so no Node thread ever switches and no shell is
 * involved: arguments go to execve as they are.
 */
import { spawn as spawnChild, type ChildProcess, type SpawnOptions as NodeSpawnOptions } from 'node:child_process';
import { NetnsError, invalid } from './errors';

export type SpawnOptions = Omit<NodeSpawnOptions, 'shell' | 'argv0'>;

export interface ExecOptions extends SpawnOptions {
  /** reject when the command exits non-zero (default true) */
  check?: boolean;
  /** text written to the child's stdin */
  input?: string | Buffer;
  /** kill the child after this many milliseconds */
  timeout?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

function argv(cmd: string, args: readonly string[]): string[] {
  if (typeof cmd !== 'string' || cmd.length === 0) throw invalid('ERR_NETNS_INVALID_ARG', 'command must be a non-empty string');
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw invalid('ERR_NETNS_INVALID_ARG', 'arguments must be an array of strings');
  return [...args];
}

export function spawn(nsPath: string, cmd: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const rest = argv(cmd, args);
  return spawnChild('nsenter', [`--net=${nsPath}`, '--', cmd, ...rest], { ...options, shell: false });
}

export function exec(nsPath: string, cmd: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
  const { check = true, input, timeout, ...spawnOptions } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(nsPath, cmd, args, { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    const timer = timeout ? setTimeout(() => child.kill('SIGKILL'), timeout) : undefined;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      const result: ExecResult = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode, signal };
      if (check && exitCode !== 0) {
        const how = signal ? `killed by ${signal}` : `exit code ${exitCode}`;
        const e = new NetnsError('ERR_NETNS_EXEC_FAILED', `${cmd} ${args.join(' ')} failed (${how}) in ${nsPath}: ${result.stderr.trim() || result.stdout.trim()}`, {
          syscall: 'exec',
          netns: nsPath,
        });
        reject(Object.assign(e, result));
      } else {
        resolve(result);
      }
    });
    // A child that exits without reading its input closes the pipe: EPIPE here is not an error of
    // the command (its exit status says how it went).
    child.stdin!.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') reject(e);
    });
    child.stdin!.end(input);
  });
}
