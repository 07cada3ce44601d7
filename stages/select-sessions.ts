// Passes on a chosen subset of binned sessions: the first N to arrive, or those named (docs/method.md §5.5, pretraining on N sessions).
//
// Decisions:
// - Order is the order of arrival. The data path keeps it (simulate yields sessions in index
//   order and every stage between it and here works one session at a time, in order), so
//   `first: 4` of a simulation is its sessions 1-4 in every run, and nested in `first: 8`:
//   the sessions of a scaling sweep grow by adding sessions, never by swapping them.
// - `first` completes as soon as it has its N sessions, so the branch below (a pretraining
//   sampler) starts without waiting for the sessions it will never use. `ids` reads the whole
//   stream, so a name that never arrived is an error naming it (and what did arrive).
// - A dropped session still counts as this node's progress (every item the body takes does), so
//   it never holds the source above back.
import { z } from 'zod';
import { defineStage } from '../core/stage.ts';
import { didYouMean } from '../core/graph/diagnostics.ts';

export const selectSessionsParams = z.object({
  first: z.number().int().min(0).default(0).describe('keep the first N sessions to arrive (fewer arriving is an error); 0: no limit'),
  ids: z.array(z.string()).default([]).describe('keep only these sessions (session ids or eids), in their order of arrival; each must arrive; empty: no filter'),
});

export type SelectSessionsParams = z.output<typeof selectSessionsParams>;

export const selectSessions = defineStage({
  id: 'select-sessions',
  version: 1,
  summary: 'Passes on the first N binned sessions to arrive, or those named by id; drops the rest',
  spec: 'docs/method.md §5.5',
  inputs: { sessions: { type: 'binned-session', description: 'binned sessions, in a stable order (e.g. straight from a simulation)' } },
  outputs: { sessions: { type: 'binned-session', description: 'the selected sessions, unchanged, in their order of arrival' } },
  params: selectSessionsParams,
  create(p, ctx) {
    const fail = (msg: string) => new Error(`select-sessions '${ctx.nodeId}': ${msg}`);
    if (p.first > 0 && p.ids.length) throw fail(`both first (${p.first}) and ids (${p.ids.length}) are set; use one`);
    const wanted = new Set(p.ids);
    if (wanted.size < p.ids.length) throw fail(`ids lists a session twice: ${p.ids.filter((x, i) => p.ids.indexOf(x) !== i).join(', ')}`);
    return {
      async *generate({ sessions }) {
        const arrived: string[] = [];
        const names: string[] = []; // ids and eids, for did-you-mean hints
        const found = new Set<string>();
        for await (const s of sessions) {
          arrived.push(s.sessionId);
          names.push(s.sessionId, ...(s.eid && s.eid !== s.sessionId ? [s.eid] : []));
          if (wanted.size) {
            const key = wanted.has(s.sessionId) ? s.sessionId : s.eid && wanted.has(s.eid) ? s.eid : undefined;
            if (key === undefined) continue;
            found.add(key);
          }
          ctx.logger.info({ session: s.sessionId, index: arrived.length }, 'selected');
          yield s;
          if (p.first > 0 && arrived.length >= p.first) return;
        }
        if (ctx.signal.aborted) return;
        if (p.first > 0 && arrived.length < p.first) throw fail(`first is ${p.first} but only ${arrived.length} session(s) arrived`);
        const missing = p.ids.filter((id) => !found.has(id));
        if (missing.length) {
          const hints = missing.map((m) => `'${m}'${didYouMean(m, names)}`).join(', ');
          throw fail(`session(s) ${hints} never arrived; arrived: ${arrived.join(', ') || 'none'}`);
        }
      },
    };
  },
});
