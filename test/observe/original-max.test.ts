import { describe, expect, it } from 'vitest';
import { ANNOTATIONS, originalMaxes, writtenAtOf } from '../../src/observe/annotations.js';
import { renderReason } from '../../src/core/why.js';

/**
 * What `governor restore` reads from the governor's `original-max` annotation. The annotation is
 * text anyone with `run.services.update` can edit: only the decimal whole number the governor
 * writes (or "" for an unset max) is a max to put back; anything else is refused in words and the
 * service is left as it is.
 */
const service = (original: string | undefined, revisionMaxInstances: number | null = null) => ({
  project: 'acme',
  region: 'us-east1',
  name: 'svc',
  etag: 'e1',
  annotations: (original === undefined ? {} : { [ANNOTATIONS.originalMax]: original }) as Record<
    string,
    string
  >,
  revisionMaxInstances,
});

describe('originalMaxes', () => {
  it('reads the max the governor wrote, and the revision max for an unset one', () => {
    expect(originalMaxes([service('4')])).toMatchObject([{ to: 4, source: 'original-max' }]);
    expect(originalMaxes([service('', 3)])).toMatchObject([{ to: 3, source: 'revision-max' }]);
    const [unset] = originalMaxes([service('', null)]);
    expect(unset).toMatchObject({ to: null, source: 'revision-max' });
    expect(unset).not.toHaveProperty('unreadable');
    expect(originalMaxes([service(undefined)])).toEqual([]);
  });

  it.each([
    ['abc'],
    ['-3'],
    ['0'],
    ['1000000000000'],
    ['2147483648'],
    ['{"max": 4}'],
    ['0x3'],
    ['1e2'],
    [' 4'],
    ['4.0'],
    ['+4'],
    ['３'],
  ])('refuses %j: nothing to put back, and says which annotation holds what', (text) => {
    const [target] = originalMaxes([service(text, 2)]);
    expect(target).toMatchObject({ to: null, unreadable: text });
  });

  it('puts back a revision max of 1 or more for an unset one, never 0', () => {
    expect(originalMaxes([service('', 0)])).toMatchObject([{ to: null, source: 'revision-max' }]);
    expect(originalMaxes([service('', 1)])).toMatchObject([{ to: 1, source: 'revision-max' }]);
  });

  it('takes the largest max Cloud Run can hold (int32)', () => {
    expect(originalMaxes([service('2147483647')])).toMatchObject([{ to: 2147483647 }]);
  });

  it('says what the annotation holds, in one line and cut short', () => {
    const long = `x\n${'9'.repeat(500)}`;
    const text = renderReason({
      basis: { kind: 'restore-none', why: 'unreadable', annotation: long },
    });
    expect(text).toContain(`${ANNOTATIONS.originalMax} annotation`);
    expect(text).toContain('not a max');
    expect(text).not.toContain('\n');
    expect(text.length).toBeLessThan(400);
  });
});

describe('writtenAtOf', () => {
  // Another governor's stamp holds a pool; removing it is the documented way to end the hold
  // (reconcile/room.ts, otherWriter), and an unreadable one holds the pool until it is corrected.
  it('reads an empty stamp as no stamp, text that is no time as unreadable, and a time as its instant', () => {
    const stamp = (text?: string) =>
      writtenAtOf(text === undefined ? {} : { [ANNOTATIONS.writtenAt]: text });
    expect(stamp()).toEqual({ absent: true });
    expect(stamp('')).toEqual({ absent: true });
    expect(stamp('garbage 2026')).toEqual({ unreadable: 'garbage 2026' });
    expect(stamp('2026-11-27T12:00:00+01:00')).toEqual({ at: '2026-11-27T11:00:00.000Z' });
  });
});
