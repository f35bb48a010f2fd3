import { z } from 'zod';
import { Alert } from './alert.js';
import { Plan } from './plan.js';
import { Policy } from './policy.js';
import { Snapshot } from './snapshot.js';

/**
 * JSON Schemas generated from the zod schemas, which stay the single source of truth. Written to
 * `schema/` by `npm run schema` for editors and subscribers; a test fails when they are stale.
 */
export function jsonSchemas(): Record<string, unknown> {
  const make = (schema: z.ZodType, io: 'input' | 'output', title: string) => ({
    title,
    ...z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'throw' }),
  });
  return {
    'policy.schema.json': make(Policy, 'input', 'Cloud Run GPU governor policy'),
    'snapshot.schema.json': make(Snapshot, 'input', 'Cloud Run GPU governor snapshot'),
    'plan.schema.json': make(Plan, 'output', 'Cloud Run GPU governor plan'),
    'alert.schema.json': make(Alert, 'output', 'Cloud Run GPU governor alert message'),
  };
}
