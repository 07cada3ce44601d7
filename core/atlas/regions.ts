// Allen CCF id -> region acronym at the Allen, Beryl and Cosmos levels (docs/method.md §2.3),
// from iblatlas' structure tree and mappings table shipped in ./data (see data/ATTRIBUTION.md).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readParquet } from '../io/parquet.ts';

export type AtlasLevel = 'allen' | 'beryl' | 'cosmos';
export const ATLAS_LEVELS: readonly AtlasLevel[] = ['allen', 'beryl', 'cosmos'];

/** Id the pipeline gives a unit with no location at all (no channel, no atlas id), as in NeuronInfo. */
export const UNLOCATED_ID = -1;
/** Label of a unit with no location information. */
export const UNLOCATED = 'unlocated';
/** Label of an id absent from the structure tree. */
export const UNKNOWN = 'unknown';
/** Allen's own label of id 0: located, but outside the brain (probe above the surface, ventricles). */
export const VOID = 'void';

export const DEFAULT_ATLAS_DIR = join(fileURLToPath(import.meta.url), '..', 'data');

export type LabelStatus = 'ok' | 'void' | 'unknown' | 'unlocated';

export interface RegionLabel {
  atlasId: number;
  /** The Allen acronym (finest level); 'void', 'unknown' or 'unlocated' as described above. */
  allen: string;
  beryl: string;
  cosmos: string;
  status: LabelStatus;
}

/**
 * The lateralised region table: rows 0..R-1 are the CSV rows (right hemisphere, positive ids),
 * rows R..2R-2 are copies of CSV rows 1..R-1 with negated ids (left hemisphere; void has no copy).
 */
export class AllenRegions {
  readonly ids: Float64Array;
  readonly acronyms: string[];
  readonly names: string[];
  /** Per level, the row each row maps to. */
  private readonly maps: Record<AtlasLevel, Int32Array>;
  private readonly rowById: Map<number, number>;
  private readonly idByAcronym: Map<string, number>;

  constructor(csvRows: { id: number; acronym: string; name: string }[], maps: Record<AtlasLevel, Int32Array>, source = 'atlas') {
    const n = csvRows.length;
    const lat = 2 * n - 1;
    for (const level of ATLAS_LEVELS) {
      if (maps[level].length !== lat) {
        throw new Error(`${source}: mapping '${level}' has ${maps[level].length} rows; the structure tree's ${n} rows need ${lat} (lateralised)`);
      }
    }
    this.ids = new Float64Array(lat);
    this.acronyms = new Array(lat);
    this.names = new Array(lat);
    csvRows.forEach((r, i) => {
      this.ids[i] = r.id;
      this.acronyms[i] = r.acronym;
      this.names[i] = r.name;
      if (i > 0) {
        this.ids[n + i - 1] = -r.id;
        this.acronyms[n + i - 1] = r.acronym;
        this.names[n + i - 1] = r.name;
      }
    });
    this.maps = maps;
    this.rowById = new Map();
    for (let i = 0; i < lat; i++) this.rowById.set(this.ids[i], i);
    this.idByAcronym = new Map();
    for (let i = 0; i < n; i++) if (!this.idByAcronym.has(csvRows[i].acronym)) this.idByAcronym.set(csvRows[i].acronym, csvRows[i].id);
  }

  get size(): number {
    return this.ids.length;
  }

  /** Row of an Allen id in the lateralised table, or -1 when the id is not in the tree. */
  rowOf(id: number): number {
    return this.rowById.get(id) ?? -1;
  }

  /** The (positive, right-hemisphere) Allen id of an acronym, or undefined. */
  idOf(acronym: string): number | undefined {
    return this.idByAcronym.get(acronym);
  }

  /** Acronym of `id` at one level, or UNKNOWN / UNLOCATED. */
  acronym(id: number, level: AtlasLevel = 'allen'): string {
    const l = this.label(id);
    return level === 'allen' ? l.allen : level === 'beryl' ? l.beryl : l.cosmos;
  }

  /** The id `id` maps to at `level` (sign kept: a left-hemisphere id maps to a left-hemisphere id). */
  mapId(id: number, level: AtlasLevel): number | undefined {
    const row = this.rowOf(id);
    if (row < 0) return undefined;
    const target = this.ids[this.maps[level][row]];
    // The non-lateralised mapping columns fold the left hemisphere onto the right: restore the sign.
    return id < 0 ? -Math.abs(target) : target;
  }

  label(id: number): RegionLabel {
    if (id === UNLOCATED_ID || !Number.isFinite(id)) {
      return { atlasId: id, allen: UNLOCATED, beryl: UNLOCATED, cosmos: UNLOCATED, status: 'unlocated' };
    }
    const row = this.rowOf(id);
    if (row < 0) return { atlasId: id, allen: UNKNOWN, beryl: UNKNOWN, cosmos: UNKNOWN, status: 'unknown' };
    return {
      atlasId: id,
      allen: this.acronyms[this.maps.allen[row]],
      beryl: this.acronyms[this.maps.beryl[row]],
      cosmos: this.acronyms[this.maps.cosmos[row]],
      status: id === 0 ? 'void' : 'ok',
    };
  }
}

/** Splits CSV text into rows of fields (RFC 4180 quoting: "a,b" and "" inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export function parseStructureTree(text: string, file: string): { id: number; acronym: string; name: string }[] {
  const rows = parseCsv(text).filter((r) => r.length > 1 || r[0] !== '');
  if (!rows.length) throw new Error(`${file}: empty structure tree`);
  const header = rows[0];
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`${file}: no '${name}' column (columns: ${header.join(', ')})`);
    return i;
  };
  const [iId, iAcr, iName] = [col('id'), col('acronym'), col('name')];
  return rows.slice(1).map((r, k) => {
    const id = Number(r[iId]);
    if (!Number.isInteger(id)) throw new Error(`${file}: row ${k + 2}: id '${r[iId]}' is not an integer`);
    return { id, acronym: r[iAcr], name: r[iName] };
  });
}

const cache = new Map<string, Promise<AllenRegions>>();

/** Loads (once per folder) the structure tree and mappings; the shipped copy by default. */
export function loadAllenRegions(dir = DEFAULT_ATLAS_DIR): Promise<AllenRegions> {
  let p = cache.get(dir);
  if (!p) {
    p = (async () => {
      const csvPath = join(dir, 'allen_structure_tree.csv');
      const pqtPath = join(dir, 'mappings.pqt');
      const csv = parseStructureTree(await readFile(csvPath, 'utf8'), csvPath);
      const table = await readParquet(pqtPath, { columns: ['Allen', 'Beryl', 'Cosmos'] });
      const col = (name: string): Int32Array => {
        const v = table.columns[name];
        if (!v) throw new Error(`${pqtPath}: no '${name}' column (columns: ${table.columnNames.join(', ')})`);
        const out = new Int32Array(v.length);
        const lat = 2 * csv.length - 1;
        for (let i = 0; i < v.length; i++) {
          const x = Number(v[i]);
          if (!Number.isInteger(x) || x < 0 || x >= lat) throw new Error(`${pqtPath}: column '${name}' row ${i}: ${v[i]} is not a row index below ${lat}`);
          out[i] = x;
        }
        return out;
      };
      return new AllenRegions(csv, { allen: col('Allen'), beryl: col('Beryl'), cosmos: col('Cosmos') }, pqtPath);
    })();
    cache.set(dir, p);
    p.catch(() => cache.delete(dir));
  }
  return p;
}
