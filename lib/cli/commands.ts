/** Every sub-command, in the order `netns-kit --help` lists them. */
import type { Command } from './command';
import { demoCommand } from './demo';
import { downCommand } from './down';
import { execCommand } from './exec';
import { gcCommand } from './gc';
import { graphCommand } from './graph';
import { listCommand } from './list';
import { shapeCommand } from './shape';
import { statusCommand } from './status';
import { upCommand } from './up';

export const COMMANDS: Command[] = [demoCommand, upCommand, downCommand, statusCommand, listCommand, execCommand, shapeCommand, gcCommand, graphCommand];
