import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The daemon's logger: pino JSON on stdout. Log a line per table change and per error, never
 * per chunk of data.
 */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { name: 'kube-lc-proxy' } });
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
