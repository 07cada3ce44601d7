// Progress bars on stderr when it is a terminal; nothing otherwise (CI logs stay clean).
import cliProgress from 'cli-progress';
import type { Progress } from './stage.ts';

export interface ProgressFactory {
  (label: string, total: number): Progress;
  /** Writes a line above the bars (or straight to stderr when there are none). */
  log(line: string): void;
  stopAll(): void;
}

export function createProgress(enabled = Boolean(process.stderr.isTTY) && !process.env.CI): ProgressFactory {
  let multi: cliProgress.MultiBar | undefined;
  let active = 0;
  const factory = ((label: string, total: number): Progress => {
    if (!enabled) return { increment() {}, setTotal() {}, stop() {} };
    multi ??= new cliProgress.MultiBar(
      { format: ' {bar} {percentage}% | {value}/{total} | {label} {note}', hideCursor: true, clearOnComplete: false, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    const bar = multi.create(Math.max(total, 1), 0, { label, note: '' });
    active++;
    let stopped = false;
    return {
      increment: (by = 1, note = '') => bar.increment(by, { note }),
      setTotal: (t) => bar.setTotal(t),
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
        if (--active === 0) {
          multi?.stop();
          multi = undefined;
        }
      },
    };
  }) as ProgressFactory;
  factory.log = (line: string) => {
    if (multi) multi.log(line.endsWith('\n') ? line : line + '\n');
    else process.stderr.write(line);
  };
  factory.stopAll = () => {
    multi?.stop();
    multi = undefined;
    active = 0;
  };
  return factory;
}
