// Collecting a whole input stream, for the ports declared `collect: true` (an evaluator waiting
// for its models, a report waiting for every metric). The body adapter (bodies.ts) calls it;
// stages receive the array (docs/architecture.md §4.4).
import { EMPTY, lastValueFrom, toArray, type Observable } from 'rxjs';

/**
 * Subscribes to `stream` at once and resolves with all its items when it completes (an absent
 * optional input gives []). Call it while the stage is being wired, not later: an item sent
 * before the subscription would be lost. The promise's rejection is marked handled here so an
 * early upstream failure is not reported as unhandled before the stage awaits it.
 */
export function collectNow<T>(stream: Observable<T> | undefined): Promise<T[]> {
  const all = lastValueFrom((stream ?? EMPTY).pipe(toArray()));
  all.catch(() => {});
  return all;
}
