// Sessions from IBL's ONE (Alyx search + verified downloads into the ONE cache, or the cache alone) as spike trains (docs/method.md §2.1, §2.2).
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { defineStage, type StageContext } from '../core/stage.ts';
import type { SessionRef, SpikeTrains } from '../core/payloads.ts';
import { loadSpikeTrains } from '../core/alf/session.ts';
import { OneClient, type DownloadReport, type SearchFilters } from '../core/one/one.ts';
import { spikeSessionDatasets } from '../core/one/spike-datasets.ts';
import { isUuid } from '../core/one/uuid.ts';

const searchSchema = z.object({
  subject: z.string().default('').describe('exact subject nickname; empty: any'),
  lab: z.string().default('').describe('exact lab name; empty: any'),
  dateRange: z
    .tuple([z.string().regex(/^\d{4}-\d{2}-\d{2}$/), z.string().regex(/^\d{4}-\d{2}-\d{2}$/)])
    .nullable()
    .default(null)
    .describe("inclusive session dates ['YYYY-MM-DD', 'YYYY-MM-DD']; null: any"),
  project: z.string().default('').describe('a project the session belongs to; empty: any'),
  datasets: z.array(z.string()).default([]).describe('file names every session must have, e.g. spikes.times.npy'),
});

export const oneDownloadParams = z.object({
  sessions: z
    .array(z.string())
    .default([])
    .describe('sessions to load: eids (UUIDs) or session folders (absolute, or relative to the working folder or the cache)'),
  search: searchSchema
    .nullable()
    .default(null)
    .describe('find sessions by these filters (used when `sessions` is empty); null in local mode takes every session in the cache'),
  cacheDir: z.string().default('').describe('ONE cache folder; empty: ONE_CACHE_DIR, ~/.mtm/one.json, else ~/Downloads/ONE/<host>'),
  // Local by default: a graph runs the same with no network (the embedded simulator cache, CI, a
  // laptop on a train), and fetching gigabytes is something a user should ask for, not get by default.
  mode: z.enum(['local', 'remote']).default('local').describe("'local' reads the cache only and never touches the network; 'remote' searches Alyx and downloads what is missing"),
  baseUrl: z.string().default('').describe('Alyx server; empty: ONE_BASE_URL, ~/.mtm/one.json, else the public IBL server'),
  probes: z.array(z.string()).default([]).describe('probe names to load (e.g. probe00); empty: every probe'),
  parallelDownloads: z.number().int().min(1).max(32).default(4).describe('files downloaded at the same time'),
  failFast: z.boolean().default(false).describe('stop at the first session that fails; false logs it and goes on with the others'),
});

export type OneDownloadParams = z.output<typeof oneDownloadParams>;

function filters(s: z.output<typeof searchSchema>): SearchFilters {
  const f: SearchFilters = {};
  if (s.subject) f.subject = s.subject;
  if (s.lab) f.lab = s.lab;
  if (s.dateRange) f.dateRange = s.dateRange;
  if (s.project) f.project = s.project;
  if (s.datasets.length) f.datasets = s.datasets;
  return f;
}

/** Turns session specs (eids, folders) and refs into spike trains for one node, downloading in remote mode. */
class SessionLoader {
  readonly client: OneClient;
  /** Clients on the cache folders that arriving refs name, by folder. */
  private readonly clients = new Map<string, OneClient>();

  constructor(
    private readonly p: OneDownloadParams,
    private readonly ctx: StageContext,
  ) {
    this.client = this.clientOn(p.cacheDir || undefined);
  }

  private clientOn(cacheDir: string | undefined): OneClient {
    const { p, ctx } = this;
    return new OneClient({ cacheDir, baseUrl: p.baseUrl || undefined, mode: p.mode, parallelDownloads: p.parallelDownloads }, { logger: ctx.logger, signal: ctx.signal });
  }

  /** The sessions the params name: listed, or found by the search (every cached one in local mode without a search). */
  async specsFromParams(): Promise<string[]> {
    const { p, client } = this;
    const specs = p.sessions.length
      ? p.sessions
      : (await client.searchSessions(p.search ? filters(p.search) : {})).map((s) => s.eid ?? join(client.cacheDir, s.relativePath));
    if (specs.length === 0) this.ctx.logger.warn({ mode: client.mode, cacheDir: client.cacheDir, search: p.search }, 'no session matches');
    return specs;
  }

  /** One session named by eid or folder: downloaded first when remote and named by eid. */
  async loadSpec(spec: string): Promise<SpikeTrains> {
    const ref = await this.client.resolveSession(spec);
    const slog = this.ctx.logger.child({ session: ref.sessionId });
    if (this.client.mode === 'remote' && ref.eid && isUuid(spec)) await this.download(ref.eid, ref.sessionId, slog);
    return loadSpikeTrains(ref.path, { probes: this.probes(), sessionId: ref.sessionId, eid: ref.eid, log: (msg) => slog.info(msg) });
  }

  /**
   * A session arriving as a reference (from the simulator, say), resolved through a ONE client on
   * the cache folder it names, in the stage's mode: by eid through the cache tables.
   */
  async loadRef(ref: SessionRef): Promise<SpikeTrains> {
    let c = ref.cacheDir ? this.clients.get(ref.cacheDir) : this.client;
    if (!c) this.clients.set(ref.cacheDir!, (c = this.clientOn(ref.cacheDir)));
    const resolved = await c.resolveSession(ref.eid ?? ref.path);
    const log = (msg: string) => this.ctx.logger.child({ session: ref.sessionId }).info(msg);
    return loadSpikeTrains(resolved.path, { probes: this.probes(), sessionId: ref.sessionId, eid: resolved.eid ?? ref.eid, log });
  }

  private probes(): string[] | undefined {
    return this.p.probes.length ? this.p.probes : undefined;
  }

  /** Downloads what the loader needs of one session, verified, with a progress bar and the manifest lines. */
  private async download(eid: string, sessionId: string, slog: StageContext['logger']): Promise<void> {
    const { p, ctx, client } = this;
    const wanted = spikeSessionDatasets(await client.listDatasets(eid), p.probes);
    if (!wanted.some((d) => d.name === 'spikes.times.npy')) {
      throw new Error(`no spike sorting (spikes.times.npy${p.probes.length ? ` for ${p.probes.join(', ')}` : ''}) among the datasets of ${eid} on ${client.config.baseUrl}`);
    }
    const total = wanted.reduce((s, d) => s + (d.size ?? 0), 0);
    const bar = ctx.progress(`download ${sessionId.slice(0, 8)}`, total);
    let shown = 0;
    let report: DownloadReport;
    try {
      report = await client.download(wanted, {
        throwOnFailure: false,
        onProgress: (done, all) => {
          if (all !== total) bar.setTotal(all);
          if (done > shown) bar.increment(done - shown);
          shown = done;
        },
      });
    } finally {
      bar.stop();
    }
    await this.manifest(sessionId, report);
    slog.info({ downloaded: report.downloaded, cached: report.cached, failed: report.failed.length, bytes: report.rows.reduce((s, r) => s + r.bytesFetched, 0) }, 'datasets in the cache');
    if (report.failed.length) {
      throw new Error(`${report.failed.length} file(s) could not be downloaded:\n${report.failed.map((r) => `  ${r.reason}`).join('\n')}`);
    }
  }

  /** One line per file to artifacts/<node>/downloads.jsonl. */
  private async manifest(sessionId: string, report: DownloadReport): Promise<void> {
    if (!report.rows.length) return;
    const file = join(this.ctx.run.artifactDir(this.ctx.nodeId), 'downloads.jsonl');
    const lines = report.rows.map((r) =>
      JSON.stringify({ session: sessionId, probe: /^alf\/(?!task_\d+\/)([^/]+)\//.exec(r.relativePath)?.[1] ?? null, dataset: r.relativePath, datasetId: r.datasetId, size: r.size, hash: r.hash, status: r.status, reason: r.reason, bytesFetched: r.bytesFetched, attempts: r.attempts, resumedFrom: r.resumedFrom }),
    );
    await appendFile(file, lines.join('\n') + '\n');
  }
}

/** The sessions of the params, then those arriving as refs; a failed one is logged and skipped unless failFast. */
async function* loadSessions(loader: SessionLoader, p: OneDownloadParams, ctx: StageContext, refs: AsyncIterable<SessionRef> | undefined): AsyncGenerator<SpikeTrains> {
  const specs = p.sessions.length > 0 || p.search !== null || !refs ? await loader.specsFromParams() : [];
  const bar = ctx.progress('sessions', specs.length);
  let failed = 0;
  let tried = 0;
  const attempt = async (spec: string, load: () => Promise<SpikeTrains>): Promise<SpikeTrains | undefined> => {
    tried++;
    try {
      const trains = await load();
      bar.increment(1, trains.sessionId);
      return trains;
    } catch (e) {
      // Ctrl-C aborts the download in flight: that session was interrupted, not failed.
      if (ctx.signal.aborted) {
        ctx.logger.info({ session: spec }, `session ${spec}: interrupted`);
        return undefined;
      }
      const msg = `session ${spec}: ${(e as Error).message}`;
      if (p.failFast) throw new Error(msg, { cause: e });
      failed++;
      ctx.logger.error({ session: spec }, msg);
      ctx.run.metric(ctx.nodeId, { skippedSession: spec, reason: (e as Error).message });
      bar.increment(1, 'failed');
      return undefined;
    }
  };
  try {
    for (const spec of specs) {
      if (ctx.signal.aborted) return;
      const trains = await attempt(spec, () => loader.loadSpec(spec));
      if (trains) yield trains;
    }
    for await (const ref of refs ?? []) {
      if (ctx.signal.aborted) return;
      bar.setTotal(specs.length + tried + 1);
      const trains = await attempt(ref.sessionId, () => loader.loadRef(ref));
      if (trains) yield trains;
    }
  } finally {
    bar.stop();
  }
  if (failed > 0 && failed === tried) throw new Error(`${ctx.nodeId}: none of the ${failed} session(s) could be loaded (see the errors above)`);
}

export const oneDownload = defineStage({
  id: 'one-download',
  version: 1,
  summary: 'Finds sessions through ONE, downloads their spike sorting, trials and behaviour into the ONE cache, and emits spike trains',
  spec: 'docs/method.md §2.1',
  inputs: {
    sessions: { type: 'session-ref', description: 'sessions to load, e.g. from the simulator: each is resolved through a ONE client on its own cache folder', optional: true },
  },
  outputs: { sessions: { type: 'spike-trains', description: 'one session at a time: spikes and clusters per probe, trials, wheel and motion energy' } },
  params: oneDownloadParams,
  create(p, ctx) {
    const refsIn = ctx.connectedInputs.has('sessions');
    if (p.mode === 'remote' && p.sessions.length === 0 && p.search === null && !refsIn) {
      throw new Error(`${ctx.nodeId}: remote mode needs 'sessions' or 'search' (it will not download every session of the database)`);
    }
    const loader = new SessionLoader(p, ctx);
    return { generate: (inputs) => loadSessions(loader, p, ctx, refsIn ? inputs.sessions : undefined) };
  },
});
