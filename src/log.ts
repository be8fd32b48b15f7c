import { pino, type Logger } from 'pino';

/** JSON lines on stdout; `UPDATER_LOG_LEVEL` sets the level (default info). */
export function createLogger(level = process.env.UPDATER_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { service: 'updater' }, timestamp: pino.stdTimeFunctions.isoTime });
}
