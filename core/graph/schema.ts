// JSON Schema for graph files, generated from the registered stages so editors can complete and
// check them (docs/architecture.md §3.3).
import { z } from 'zod';
import type { Registry } from '../registry.ts';
import { stageKey } from '../stage.ts';

const REF_PATTERN = '^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$';
const EDGE_PATTERN = '^[A-Za-z][A-Za-z0-9_-]*\\.[A-Za-z][A-Za-z0-9]*$';

export function graphJsonSchema(registry: Registry): Record<string, unknown> {
  const edge = { type: 'string', pattern: EDGE_PATTERN, description: '"<node>.<port>"' };
  const nodeVariants = registry.allStages().map((s) => {
    const params = z.toJSONSchema(s.params, { io: 'input', unrepresentable: 'any' }) as Record<string, any>;
    delete params.$schema;
    // A param may instead be a ${name} reference to a graph-level param.
    for (const [k, v] of Object.entries((params.properties ?? {}) as Record<string, unknown>)) {
      params.properties[k] = { anyOf: [v, { type: 'string', pattern: REF_PATTERN }] };
    }
    params.additionalProperties = false;
    const inputs: Record<string, unknown> = {};
    for (const [port, spec] of Object.entries(s.inputs)) {
      inputs[port] = { description: `${spec.type}: ${spec.description}`, anyOf: [edge, { type: 'array', items: edge, minItems: 1 }] };
    }
    const required = Object.entries(s.inputs).filter(([, p]) => !p.optional).map(([k]) => k);
    return {
      title: stageKey(s),
      description: s.summary,
      type: 'object',
      properties: {
        stage: { const: stageKey(s) },
        description: { type: 'string' },
        in: { type: 'object', properties: inputs, additionalProperties: false, ...(required.length ? { required } : {}) },
        params,
      },
      required: ['stage', ...(required.length ? ['in'] : [])],
      additionalProperties: false,
    };
  });
  const { instance, block } = blockSchemas();
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://mtm-flow.dev/schema/graph.json',
    title: 'mtm-flow graph file',
    type: 'object',
    properties: {
      name: { type: 'string', pattern: '^[\\w.-]+$' },
      description: { type: 'string' },
      seed: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: REF_PATTERN }] },
      plugins: { type: 'array', items: { type: 'string' }, description: 'extra plugin folders, relative to this file' },
      params: { type: 'object', propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, description: 'graph params and their defaults; use as ${name}' },
      profiles: {
        type: 'object',
        description: 'named sets of graph-param values, applied with --profile <name> (before --set)',
        additionalProperties: { type: 'object', properties: { description: { type: 'string' }, params: { type: 'object' } }, additionalProperties: false },
      },
      blocks: { type: 'object', propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_-]*$' }, additionalProperties: block, description: 'reusable node groups, instantiated with use: <block>' },
      nodes: {
        type: 'object',
        propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_-]*$' },
        additionalProperties: { oneOf: [...nodeVariants, instance] },
      },
    },
    required: ['nodes'],
    additionalProperties: false,
  };
}

/** Block instances and block bodies (core/graph/blocks.ts): templates, so checked loosely here;
 * the loader checks the expansion against the stages. */
function blockSchemas(): { instance: Record<string, unknown>; block: Record<string, unknown> } {
  const foreach = { anyOf: [{ type: 'object', additionalProperties: { type: 'array', minItems: 1 } }, { type: 'array', items: { type: 'object' }, minItems: 1 }] };
  const instance = {
    title: 'use: <block>',
    description: 'an instance of a block: its nodes, with these block params',
    type: 'object',
    properties: { use: { type: 'string' }, description: { type: 'string' }, params: { type: 'object' }, foreach },
    required: ['use'],
    additionalProperties: false,
  };
  const templateNode = {
    type: 'object',
    properties: { stage: { type: 'string' }, use: { type: 'string' }, description: { type: 'string' }, in: { type: 'object' }, params: { type: 'object' }, foreach },
    additionalProperties: false,
  };
  const block = {
    type: 'object',
    properties: {
      description: { type: 'string' },
      params: { type: 'object', propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, description: 'block params and their defaults (~: the instance gives it); use as ${name}' },
      nodes: { type: 'object', additionalProperties: templateNode, minProperties: 1, description: 'node id templates (${name}: the instance key) to nodes' },
    },
    required: ['nodes'],
    additionalProperties: false,
  };
  return { instance, block };
}
