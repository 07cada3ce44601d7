// Named sets of graph-param values ("profiles"), so one graph file can carry its quick defaults
// and, say, the paper's recipe without a second copy of its nodes:
//
//   params: { epochs: 250, batchSize: 8 }
//   profiles:
//     paper:
//       description: the reference's recipe and sizes (hours on a CPU)
//       params: { epochs: 1000, batchSize: 16 }
//
// `mtm run g.yaml --profile paper` applies the profile's values over the param defaults, and
// `--set` still wins over both. Rules (docs/architecture.md §3):
// - A profile may only set params the graph declares; anything else is an error at its key.
// - An unknown profile name is an error that lists the file's profiles.
// - graph.resolved.yaml holds the resulting param values, so rerunning it needs no --profile.
import { type Diagnostic, didYouMean, listOf } from './diagnostics.ts';
import { type GraphSource, isPlainObject, typeName } from './source.ts';

const PROFILE_KEYS = ['description', 'params'];

/**
 * Checks the file's `profiles:` and, when `name` is given, writes that profile's values over
 * `params` (in place). Problems go to `out`, located in the file.
 */
export function applyProfile(raw: unknown, name: string | undefined, params: Record<string, unknown>, src: GraphSource, out: Diagnostic[]): void {
  if (raw !== undefined && raw !== null && !isPlainObject(raw)) {
    out.push(src.diag(['profiles'], `profiles must be a mapping of profile name to { description, params }, got ${typeName(raw)}`));
    return;
  }
  const profiles = (raw ?? {}) as Record<string, unknown>;
  for (const [p, body] of Object.entries(profiles)) {
    if (!isPlainObject(body)) {
      out.push(src.diag(['profiles', p], `profile '${p}' must be a mapping with params (and optionally a description), got ${typeName(body)}`));
      continue;
    }
    for (const k of Object.keys(body)) {
      if (!PROFILE_KEYS.includes(k)) out.push(src.diag(['profiles', p, k], `unknown profile key '${k}'${didYouMean(k, PROFILE_KEYS)}; expected ${listOf(PROFILE_KEYS)}`, true));
    }
    if (body.description !== undefined && typeof body.description !== 'string') out.push(src.diag(['profiles', p, 'description'], `description must be text, got ${typeName(body.description)}`));
    if (body.params !== undefined && !isPlainObject(body.params)) {
      out.push(src.diag(['profiles', p, 'params'], `params must be a mapping of graph param: value, got ${typeName(body.params)}`));
      continue;
    }
    for (const k of Object.keys((body.params ?? {}) as object)) {
      if (!Object.hasOwn(params, k)) out.push(src.diag(['profiles', p, 'params', k], `profile '${p}' sets '${k}', which is not a graph param${didYouMean(k, Object.keys(params))}; the graph's params are ${listOf(Object.keys(params))}`, true));
    }
  }
  if (name === undefined) return;
  const chosen = profiles[name];
  if (!isPlainObject(chosen)) {
    const known = Object.keys(profiles);
    out.push({ file: '--profile', line: 0, col: 0, path: name, message: `unknown profile '${name}'${didYouMean(name, known)}; ${known.length ? `${src.file} has ${listOf(known)}` : `${src.file} declares no profiles`}` });
    return;
  }
  for (const [k, v] of Object.entries((chosen.params ?? {}) as Record<string, unknown>)) if (Object.hasOwn(params, k)) params[k] = v;
}
