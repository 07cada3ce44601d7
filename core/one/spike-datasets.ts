// Which datasets of a session the spike-trains loader needs: spikes and clusters per probe, channels,
// trials, wheel and whisker motion energy (docs/method.md §2.2), default revisions only.
import { join } from 'node:path';
import { SORTER_PREFERENCE } from '../alf/session.ts';
import type { DatasetRecord } from './records.ts';

/** Per probe collection: the files core/alf/session.ts reads. */
export const PROBE_FILES = new Set([
  'spikes.times.npy',
  'spikes.clusters.npy',
  'clusters.channels.npy',
  'clusters.depths.npy',
  'clusters.metrics.pqt',
  'clusters.brainLocationIds_ccf_2017.npy',
  'channels.brainLocationIds_ccf_2017.npy',
]);

/** Session-level objects in alf/ (or alf/task_NN/): the trials object, wheel, left camera motion energy. */
const SESSION_FILE = [
  /^(?:_[A-Za-z0-9]+_)?trials\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_-]+)*\.(npy|pqt)$/,
  /^(?:_ibl_)?wheel\.(position|timestamps)\.npy$/,
  /^(?:_ibl_)?leftCamera\.(times|ROIMotionEnergy)\.npy$/,
];

/** Where several revisions of one file exist, the default one (else the latest revision). */
export function defaultRevisions(ds: readonly DatasetRecord[]): DatasetRecord[] {
  const byFile = new Map<string, DatasetRecord[]>();
  for (const d of ds) {
    const k = `${d.collection}/${d.name}`;
    const list = byFile.get(k);
    if (list) list.push(d);
    else byFile.set(k, [d]);
  }
  const out: DatasetRecord[] = [];
  for (const list of byFile.values()) {
    if (list.length === 1) {
      out.push(list[0]);
      continue;
    }
    const defaults = list.filter((d) => d.defaultRevision);
    const pool = defaults.length ? defaults : list;
    out.push(pool.reduce((a, b) => (b.revision > a.revision ? b : a)));
  }
  return out;
}

/**
 * The datasets to fetch for loadSpikeTrains. `probes` limits the probes (empty: all). For a probe
 * with several spike sortings only the one the loader will pick (SORTER_PREFERENCE) is kept.
 */
export function spikeSessionDatasets(ds: readonly DatasetRecord[], probes: readonly string[] = []): DatasetRecord[] {
  const rows = defaultRevisions(ds);
  const keep: DatasetRecord[] = [];
  const probeRows = new Map<string, { sorter: string; d: DatasetRecord }[]>();
  for (const d of rows) {
    const parts = d.collection.split('/');
    if (parts[0] !== 'alf') continue;
    if (parts.length === 1 || (parts.length === 2 && /^task_\d+$/.test(parts[1]))) {
      if (SESSION_FILE.some((re) => re.test(d.name))) keep.push(d);
      continue;
    }
    if (parts.length > 3 || !PROBE_FILES.has(d.name)) continue;
    const probe = parts[1];
    if (probes.length && !probes.includes(probe)) continue;
    const list = probeRows.get(probe) ?? [];
    list.push({ sorter: parts[2] ?? '', d });
    probeRows.set(probe, list);
  }
  for (const [probe, list] of probeRows) {
    if (!list.some((x) => x.d.name === 'spikes.times.npy')) {
      // The loader fails a probe folder without spike times (local mode); a probe whose spike
      // times the server does not list fails the same way instead of vanishing from the session.
      const d = list[0].d;
      const sessionDir = d.path.slice(0, d.path.length - join(...d.relativePath.split('/')).length).replace(/[\\/]+$/, '');
      throw new Error(`${join(sessionDir, 'alf', probe)}: missing spikes.times.npy (spike times in seconds): the server lists ${list.length} file(s) of ${probe} but not its spike times`);
    }
    const sorters = [...new Set(list.filter((x) => x.sorter && x.d.name === 'spikes.times.npy').map((x) => x.sorter))].sort();
    const pick = sorters.length ? (SORTER_PREFERENCE.find((s) => sorters.includes(s)) ?? sorters[0]) : '';
    for (const x of list) if (x.sorter === pick) keep.push(x.d);
  }
  return keep.sort((a, b) => a.relativePath.localeCompare(b.relativePath));
}
