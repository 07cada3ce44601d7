// Logs: every record as a JSON line in the run directory, and readable lines on stderr.
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LogOptions {
  /** JSON-lines file (the run's logs.jsonl); omitted for commands that make no run. */
  file?: string;
  /** Level shown on stderr; the file always gets debug and above. */
  level?: string;
  /** Where readable lines go (defaults to stderr); progress bars route around it. */
  write?: (line: string) => void;
  color?: boolean;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const write = opts.write ?? ((line: string) => void process.stderr.write(line));
  const human = pretty({
    colorize: opts.color ?? Boolean(process.stderr.isTTY),
    ignore: 'pid,hostname',
    translateTime: 'HH:MM:ss',
    singleLine: true,
    sync: true,
    destination: new Writable({
      write(chunk, _enc, cb) {
        write(String(chunk));
        cb();
      },
    }),
  });
  const streams: pino.StreamEntry[] = [{ level: level as pino.Level, stream: human }];
  if (opts.file) streams.push({ level: 'debug', stream: pino.destination({ dest: opts.file, sync: true, mkdir: true }) });
  return pino({ level: 'debug', base: undefined, redact: { paths: ['password', '*.password', 'token', '*.token', 'headers.authorization', '*.headers.authorization'], censor: '[redacted]' } }, pino.multistream(streams));
}

/** A logger that drops everything (library use and tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
