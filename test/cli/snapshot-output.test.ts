import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSnapshot, MAX_SNAPSHOT_BYTES, writeSnapshot } from '../../src/cli/files.js';
import { formatSnapshot, type Snapshot } from '../../src/core/snapshot.js';
import { MAX_DOCUMENT_BYTES } from '../../src/read-capped.js';
import { snapshotService } from '../support/fixtures.js';

/**
 * `governor snapshot` prints what it observed, whole; one larger than the governor reads back
 * (`plan --snapshot` refuses it) says so on stderr, with both sizes. A snapshot over the real
 * 64 MiB takes some 900 services with a week of minutes each (seconds to build and format), so
 * the limit is passed in here; the command passes the one `loadSnapshot` reads with.
 */

const tmp = mkdtempSync(join(tmpdir(), 'governor-snapshot-output-'));

const snapshot: Snapshot = {
  version: 1,
  takenAt: '2026-11-27T15:00:00.000Z',
  pools: [],
  services: [snapshotService('chat', 2, { current: 1, peak: 2, utilization: 0.5 })],
  unmanagedUsage: [],
};

function printed(maxBytes: number): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  writeSnapshot(
    {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
    },
    snapshot,
    maxBytes,
  );
  return { stdout, stderr };
}

describe('governor snapshot: what a terminal would act on', () => {
  it('is escaped, and reads back the same', () => {
    // JSON.stringify leaves C1 controls, line separators and bidirectional controls as they are.
    const note = 'Monitoring read failed: \u009b31m\u2028\u202eboom\u001b[2J';
    const hostile: Snapshot = {
      ...snapshot,
      services: [snapshotService('svc', 1, null, { usageNote: note })],
    };
    const text = formatSnapshot(hostile);
    expect(text.slice(0, -1)).not.toMatch(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069](?<!\n)/u);
    expect(text).toContain('\\u009b31m\\u2028\\u202eboom\\u001b[2J');
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(hostile)));
  });
});

describe('governor snapshot: a snapshot larger than is read back', () => {
  const text = formatSnapshot(snapshot);
  const bytes = Buffer.byteLength(text);

  it('reads back with the limit snapshot files are read with', () => {
    expect(MAX_SNAPSHOT_BYTES).toBe(MAX_DOCUMENT_BYTES);
  });

  it('within the limit: printed whole, nothing on stderr, and read back', async () => {
    const r = printed(bytes);
    expect(r.stdout).toBe(text);
    expect(r.stderr).toBe('');
    const file = join(tmp, 'fits.json');
    writeFileSync(file, r.stdout);
    expect(await loadSnapshot(file, bytes)).toEqual(snapshot);
  });

  it('over the limit: printed whole, one warning naming its size and the limit, and refused on reading', async () => {
    const r = printed(bytes - 1);
    expect(r.stdout).toBe(text);
    expect(r.stderr).toBe(
      `warning: this snapshot is ${bytes} bytes, over the ${bytes - 1} bytes a snapshot file may have: \`governor plan --snapshot\` and \`status --snapshot\` will refuse it (observe fewer projects, or a policy with a shorter lookback)\n`,
    );
    const file = join(tmp, 'over.json');
    writeFileSync(file, r.stdout);
    await expect(loadSnapshot(file, bytes - 1)).rejects.toThrow(/over \d+ bytes/);
  });
});
