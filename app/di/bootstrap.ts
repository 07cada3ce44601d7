// Builds the inversify container once at start-up from the built-in stages, the plugins/ folder
// and any plugin paths the user names. `container.get*` appears only here (docs/architecture.md §6).
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Container, ContainerModule } from 'inversify';
import { ArchitectureToken, StageContribution, type PluginManifest } from '../../core/plugin.ts';
import type { ArchitectureContribution } from '../../core/architecture.ts';
import { Registry, type LoadedPlugin } from '../../core/registry.ts';
import type { StageDescriptor } from '../../core/stage.ts';
import { GraphError } from '../../core/graph/diagnostics.ts';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILTIN_PLUGINS_DIR = join(PROJECT_ROOT, 'plugins');

function inputError(file: string, message: string): GraphError {
  return new GraphError([{ file, line: 0, col: 0, path: 'plugin', message }]);
}

/** Finds a plugin folder: a path, or the name of an installed package. */
export function resolvePluginFolder(spec: string, cwd = process.cwd()): string {
  const asPath = resolve(cwd, spec);
  if (existsSync(asPath)) return realpathSync(asPath);
  try {
    const req = createRequire(join(cwd, 'package.json'));
    return realpathSync(dirname(req.resolve(`${spec}/package.json`)));
  } catch {
    throw inputError(spec, `no plugin folder or installed package named '${spec}'`);
  }
}

/** Reads a plugin's manifest pointer (package.json "mtmPlugin") and imports only that module. */
export async function loadPlugin(folder: string): Promise<LoadedPlugin> {
  const pkgPath = join(folder, 'package.json');
  if (!existsSync(pkgPath)) throw inputError(folder, `not a plugin: ${pkgPath} is missing (a plugin's package.json names its manifest in "mtmPlugin")`);
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
  } catch (e) {
    throw inputError(pkgPath, `cannot parse: ${(e as Error).message}`);
  }
  if (typeof pkg.mtmPlugin !== 'string') throw inputError(pkgPath, `not a plugin: no "mtmPlugin" field naming the manifest module (e.g. "./plugin.ts")`);
  const entry = resolve(folder, pkg.mtmPlugin);
  if (!existsSync(entry)) throw inputError(pkgPath, `"mtmPlugin" names ${entry}, which does not exist`);
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(entry).href);
  } catch (e) {
    throw inputError(entry, `failed to load plugin manifest: ${(e as Error).message}`);
  }
  const manifest = (mod.default ?? mod.plugin) as PluginManifest | undefined;
  if (!manifest || typeof manifest.name !== 'string' || !(manifest.module instanceof ContainerModule)) {
    throw inputError(entry, `the manifest module must export (default or 'plugin') a definePlugin({...}) result`);
  }
  return { manifest, source: folder };
}

/** Folders under plugins/ whose package.json names a manifest. */
export function discoverBuiltinPlugins(dir = BUILTIN_PLUGINS_DIR): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((p) => statSync(p).isDirectory() && existsSync(join(p, 'package.json')))
    .sort();
}

export interface BootstrapOptions {
  /** Extra plugin folders or package names (from --plugin or a graph's plugins:). */
  plugins?: string[];
  /** Leave out the plugins/ folder (tests of the core alone). */
  skipBuiltinPlugins?: boolean;
}

export async function createRegistry(opts: BootstrapOptions = {}): Promise<Registry> {
  const { builtinPlugin } = await import('../../stages/index.ts');
  const loaded: LoadedPlugin[] = [{ manifest: builtinPlugin, source: 'builtin' }];
  const folders = [...(opts.skipBuiltinPlugins ? [] : discoverBuiltinPlugins()), ...(opts.plugins ?? []).map((p) => resolvePluginFolder(p))];
  const seen = new Set<string>();
  for (const f of folders) {
    if (seen.has(f)) continue;
    seen.add(f);
    loaded.push(await loadPlugin(f));
  }
  const names = new Map<string, string>();
  for (const p of loaded) {
    const other = names.get(p.manifest.name);
    if (other) throw inputError(p.source, `plugin name '${p.manifest.name}' is also used by ${other}`);
    names.set(p.manifest.name, p.source);
  }
  const container = new Container();
  await container.loadAsync(...loaded.map((p) => p.manifest.module));
  const stages = container.isBound(StageContribution) ? container.getAll<StageDescriptor>(StageContribution) : [];
  const archs = container.isBound(ArchitectureToken) ? container.getAll<ArchitectureContribution>(ArchitectureToken) : [];
  try {
    return new Registry(stages, archs, loaded);
  } catch (e) {
    throw inputError('plugins', (e as Error).message);
  }
}
