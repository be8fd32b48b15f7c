/**
 * The REST routes' JSON Schemas, generated from the contract (src/contract/): the shared shapes
 * registered once by `$id` (and so named in /openapi.json), the rest inline per route.
 */
import { z } from 'zod';
import { checkResult, componentView, errorResponse, jsonSchema, run, type JsonSchema } from '../contract/index.js';

/** The shared schemas, by `$id`; the component's `kind` is one of the kinds this updater knows. */
export function sharedSchemas(kinds: readonly string[]): JsonSchema[] {
  const component = kinds.length > 0 ? componentView.extend({ kind: z.enum(kinds as [string, ...string[]]) }) : componentView;
  return [jsonSchema(errorResponse, 'output', 'Error'), jsonSchema(component, 'output', 'Component'), jsonSchema(checkResult, 'output', 'CheckResult'), jsonSchema(run, 'output', 'Run')];
}

export const ref = (id: 'Error' | 'Component' | 'CheckResult' | 'Run') => ({ $ref: `${id}#` });
export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ref('Error')]));
/** A request part (body, params, query string) as a client may send it. */
export const request = (schema: z.ZodType) => jsonSchema(schema, 'input');
/** An answer as the updater sends it. */
export const answer = (schema: z.ZodType) => jsonSchema(schema, 'output');
