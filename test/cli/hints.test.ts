import { describe, expect, it } from 'vitest';
import { failureLine } from '../../src/cli/hints.js';

const emulator = {
  emulatorHost: '127.0.0.1:8085',
  emulatorAdmin: 'http://127.0.0.1:8086',
  pubsubEmulatorHost: '127.0.0.1:8085',
};

describe('the line a failed command prints', () => {
  it.each([
    ['the gRPC host', 'connect ECONNREFUSED 127.0.0.1:8085'],
    ['the admin URL', 'fetch failed: connect ECONNREFUSED 127.0.0.1:8086'],
  ])('a call refused at %s of the emulator asks whether it still runs', (_, error) => {
    expect(failureLine(`could not observe p: ${error}`, emulator)).toContain(
      'is `governor emulator` still running?',
    );
  });

  it.each([
    '4 DEADLINE_EXCEEDED: deadline exceeded calling 127.0.0.1:8085',
    '7 PERMISSION_DENIED: from 127.0.0.1:8085',
    'connect ECONNREFUSED 10.0.0.1:443',
  ])('a failure that is no refused connection to the emulator has no such hint: %s', (error) => {
    const line = failureLine(`could not observe p: ${error}`, emulator);
    expect(line).toBe(`error: could not observe p: ${error}\n`);
  });

  it('without the emulator in the environment, a refused connection is told as it is', () => {
    const line = failureLine('connect ECONNREFUSED 127.0.0.1:8085', null);
    expect(line).toBe('error: connect ECONNREFUSED 127.0.0.1:8085\n');
  });
});

describe('the line for a stored document that cannot be read', () => {
  it('a Firestore document says, as a state file does, that every run fails on it until it is mended or deleted', () => {
    // A corrupt state file carried what to do; a Firestore document as corrupt said nothing.
    const line = failureLine(
      'Unreadable document gpu-governor/p1/state/conditions:\n  - json: not JSON (Unexpected token)',
      null,
    );
    expect(line).toContain(
      'error: Unreadable document gpu-governor/p1/state/conditions: json: not JSON (Unexpected token) — every run that reads it fails on it until it is mended or deleted',
    );
    expect(line).toContain('docs/alerts.md, "When an alert fires"');
  });

  it('the governor id, whose error says already how to mend it, gets no second hint', () => {
    const line = failureLine(
      'Unreadable document gpu-governor/%governor:\n  - id: Invalid string\nNo run starts until it is mended or removed: mend it',
      null,
    );
    expect(line).not.toContain(' — ');
  });
});

describe('the line for a kept discovery that cannot be read', () => {
  it('says the next dispatch replaces it, and that removing it costs nothing', () => {
    const line = failureLine(
      'Unreadable discovery cache .governor/state/%discovery.json:\n  - foundAt: Invalid ISO datetime',
      null,
    );
    expect(line).toContain(
      ' — every command that reads it fails on it until the next dispatch searches again and replaces it',
    );
    expect(line).toContain('removed, nothing is lost');
  });
});

describe("the line for Firestore's kept discovery that cannot be read", () => {
  it('says the same as for the file', () => {
    const line = failureLine(
      'Unreadable document gpu-governor/%discovery:\n  - json: not JSON (Unexpected token)',
      null,
    );
    expect(line).toContain('the next dispatch searches again');
  });
});

describe('the line for a permission Google denied', () => {
  // Google's denial names the permission ("Permission 'run.services.list' denied on resource
  // ...", https://cloud.google.com/iam/docs/permission-error-messages); the hint says which role
  // holds it and how the Terraform module grants it, from the one table (src/core/permissions.ts).
  it.each([
    [
      "listing the services of projects/p/locations/r failed: PERMISSION_DENIED: Permission 'run.services.list' denied on resource 'projects/p/locations/r' (or resource may not exist).",
      'run.services.list',
      'roles/run.viewer',
    ],
    [
      "reading quota failed: PERMISSION_DENIED: Permission 'cloudquotas.quotas.get' denied on resource 'projects/p/locations/global/services/run.googleapis.com/quotaInfos/Q'.",
      'cloudquotas.quotas.get',
      'roles/cloudquotas.viewer',
    ],
    [
      "setting max instances of s failed: PERMISSION_DENIED: Permission 'iam.serviceaccounts.actAs' denied on service account sa@p.iam.gserviceaccount.com (or it may not exist).",
      'iam.serviceAccounts.actAs',
      'roles/iam.serviceAccountUser',
    ],
    [
      "writing the governor's metrics to project p (CreateTimeSeries) failed: PERMISSION_DENIED: Permission monitoring.metricDescriptors.create denied (or the resource may not exist).",
      'monitoring.metricDescriptors.create',
      'roles/monitoring.metricWriter',
    ],
  ])('%s names the role that holds it', (message, permission, role) => {
    const line = failureLine(message, null);
    expect(line).toContain(`the identity this ran as lacks ${permission}: grant ${role}`);
    expect(line).toContain('(Terraform: ');
    expect(line.endsWith('\n')).toBe(true);
    expect(line.split('\n').length).toBe(2);
  });

  it('a denial of a permission the governor never needs has no such hint', () => {
    const message = "PERMISSION_DENIED: Permission 'storage.objects.get' denied on resource 'b/o'.";
    expect(failureLine(message, null)).toBe(`error: ${message}\n`);
  });
});
