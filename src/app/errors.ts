/**
 * Why a command was refused, as every transport tells it: a code the contract names and a sentence
 * (REST maps the code to a status; message transports send it as an `error`).
 */
import { EngineError } from '../engine/engine.js';
import { isStorageError, JournalUnwritableError } from '../journal/journal.js';

/**
 * The engine's codes, `bad_body`, and `update_first`: a component marked `updateFirst` has an
 * update available, so another may not be updated on its own before it (409).
 */
export type CommandErrorCode = EngineError['code'] | 'bad_body' | 'update_first';

export class CommandError extends Error {
  constructor(
    readonly code: CommandErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

/**
 * The refusal an error stands for, or null when it is a bug: the engine's refusals, and a write that
 * failed for want of storage (a full disk: `insufficient_storage`, never a 500).
 */
export function refusalOf(error: unknown): CommandError | null {
  if (error instanceof CommandError) return error;
  if (error instanceof EngineError) return new CommandError(error.code, error.message);
  if (error instanceof JournalUnwritableError) return new CommandError('insufficient_storage', error.message);
  if (isStorageError(error)) return new CommandError('insufficient_storage', `cannot write to disk: ${(error as Error).message}`);
  return null;
}
