/** Every sub-command, in the order `netns-kit --help` lists them. */
import type { Command } from './command';
import { demoCommand } from './demo';
import { execCommand } from './exec';
import { graphCommand } from './graph';
import { listCommand } from './list';

export const COMMANDS: Command[] = [demoCommand, listCommand, execCommand, graphCommand];
