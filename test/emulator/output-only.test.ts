import { describe, expect, it } from 'vitest';
import { outputOnlyFields } from '../../src/emulator/protos.js';

describe('outputOnlyFields: the OUTPUT_ONLY fields of a message, read from its shipped .proto', () => {
  it('lists the output-only fields of a Cloud Run Service and nothing a client writes', () => {
    const fields = outputOnlyFields(
      '@google-cloud/run',
      'google/cloud/run/v2/service.proto',
      'Service',
    );
    for (const f of ['uid', 'generation', 'reconciling', 'uri', 'conditions', 'terminal_condition'])
      expect(fields.has(f), f).toBe(true);
    // Written by clients (etag is OPTIONAL, template REQUIRED), or a field of a nested message
    // (MultiRegionSettings.regions).
    for (const f of ['name', 'etag', 'scaling', 'annotations', 'template', 'regions'])
      expect(fields.has(f), f).toBe(false);
  });

  it('reads fields whose options span lines, and other messages of other packages', () => {
    const config = outputOnlyFields(
      '@google-cloud/cloudquotas',
      'google/api/cloudquotas/v1/resources.proto',
      'QuotaConfig',
    );
    expect([...config].sort()).toEqual([
      'granted_value',
      'request_origin',
      'state_detail',
      'trace_id',
    ]);
    expect(() =>
      outputOnlyFields('@google-cloud/run', 'google/cloud/run/v2/service.proto', 'Nope'),
    ).toThrow(/message Nope is not in/);
  });
});
