// Small settings for the smoke run of each graph in graphs/ (`--set` pairs; $TMP is a fresh
// temporary folder). A graph without an entry fails the graph tests on purpose.
export const SMOKE_SETTINGS: Record<string, string[]> = {};
