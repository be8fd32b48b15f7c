/**
 * JSON Schema (draft-07, what Fastify's Ajv and @fastify/swagger speak) from the contract's zod
 * schemas: request parts as a client may send them (`input`: defaults make fields optional),
 * answers as the updater sends them (`output`). Written plainly: `type: ["string", "null"]` rather
 * than an `anyOf` (which the response serializer would have to try at run time), and no bounds
 * where an integer only has to be an integer.
 */
import { z } from 'zod';

export type JsonSchema = Record<string, unknown>;

export function jsonSchema(schema: z.ZodType, io: 'input' | 'output', id?: string): JsonSchema {
  const out = plain(z.toJSONSchema(schema, { target: 'draft-7', io, unrepresentable: 'any' })) as JsonSchema;
  delete out.$schema;
  return id === undefined ? out : { $id: id, ...out };
}

const isObject = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v);

function plain(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(plain);
  if (!isObject(node)) return node;
  let s: JsonSchema = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, plain(v)]));
  if (s.minimum === -Number.MAX_SAFE_INTEGER) delete s.minimum;
  if (s.maximum === Number.MAX_SAFE_INTEGER) delete s.maximum;
  const anyOf = s.anyOf;
  if (Array.isArray(anyOf) && anyOf.length === 2 && isObject(anyOf[1]) && anyOf[1].type === 'null' && Object.keys(anyOf[1]).length === 1) {
    const first: unknown = anyOf[0];
    if (isObject(first) && typeof first.type === 'string') {
      const rest: JsonSchema = { ...s };
      delete rest.anyOf;
      s = { ...first, ...rest, type: [first.type, 'null'] };
    }
  }
  return s;
}
