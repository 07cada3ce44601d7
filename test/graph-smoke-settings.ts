// Small settings for the smoke run of each graph in graphs/ (`--set` pairs; $TMP is a fresh
// temporary folder), or the test file that runs the graph end to end instead. A graph without
// an entry fails the graph tests on purpose.
export const SMOKE_SETTINGS: Record<string, string[] | { runBy: string }> = {
  'quickstart.yaml': { runBy: 'test/quickstart-graph.test.ts' },
  'ablation.yaml': ['trials=[60,60]', 'neurons=[30,30]', 'epochs=1', 'evaluate.maxLeftOutNeurons=4'],
  'ndt2.yaml': ['trials=[60,60]', 'neurons=[30,30]', 'epochs=1', 'evaluate.maxLeftOutNeurons=4', 'evaluate.decoding=false'],
  'bin-session.yaml': { runBy: 'test/bin-session.test.ts' },
  'train.yaml': { runBy: 'test/train-resume.test.ts' },
  'pretrain.yaml': { runBy: 'test/finetune-graph.test.ts' },
  'finetune.yaml': { runBy: 'test/finetune-graph.test.ts' },
  'stream.yaml': { runBy: 'stages/stream-predict.test.ts' },
  'scaling.yaml': { runBy: 'test/scaling-graph.test.ts' },
  'fewshot.yaml': { runBy: 'test/scaling-graph.test.ts' },
  'real-session.yaml': { runBy: 'test/real-session-graph.test.ts' },
};
