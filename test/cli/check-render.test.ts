import pc from 'picocolors';
import { describe, expect, it } from 'vitest';
import { ALIKE_LISTED, renderCheck } from '../../src/cli/check-command.js';
import type { CheckItem, CheckReport } from '../../src/core/permissions.js';

/**
 * What `governor check` prints for a large fleet: 3,000 governed services are 6,000 checks of
 * services; alike ones are one line each, the rest as before, the counts unchanged.
 */

const c = pc.createColors(false);

function service(name: string, permission: CheckItem['permission'], ok: boolean): CheckItem {
  return {
    subject: `service p/us-central1/${name}`,
    permission,
    status: ok ? 'ok' : 'missing',
    detail: ok
      ? 'TestIamPermissions on the service'
      : 'TestIamPermissions on the service: not granted',
    fix: ok ? null : 'grant roles/run.developer to the governor',
  };
}

function report(services: number, denied: number): CheckReport {
  const names = Array.from({ length: services }, (_, i) => `svc-${String(i).padStart(4, '0')}`);
  return {
    governed: services,
    items: [
      {
        subject: 'project p',
        permission: 'run.locations.list',
        status: 'ok',
        detail: 'listed the regions',
        fix: null,
      },
      ...names.flatMap((n, i) => [
        service(n, 'run.services.get', true),
        service(n, 'run.services.update', i >= denied),
      ]),
      {
        subject: 'topic projects/p/topics/t',
        permission: 'pubsub.topics.publish',
        status: 'ok',
        detail: 'TestIamPermissions on the topic',
        fix: null,
      },
    ],
  };
}

describe('governor check on a large fleet', () => {
  it('prints alike checks of services as one line each, naming a few of those that fail', () => {
    const text = renderCheck('policy.yaml', 'enforce', report(3_000, 20), c);
    const lines = text.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(20);
    expect(text).toMatch(
      /^ {2}OK {9}3000 services +run\.services\.get +TestIamPermissions on the service$/m,
    );
    expect(text).toMatch(
      /^ {2}OK {9}2980 services +run\.services\.update +TestIamPermissions on the service$/m,
    );
    expect(text).toMatch(
      /^ {2}MISSING {4}20 services +run\.services\.update +TestIamPermissions on the service: not granted$/m,
    );
    expect(text).toContain(
      'p/us-central1/svc-0000, p/us-central1/svc-0001, p/us-central1/svc-0002, p/us-central1/svc-0003, p/us-central1/svc-0004 and 15 more (--json lists each)',
    );
    expect(text).toContain('→ grant roles/run.developer to the governor');
    // The counts are of every check, as before.
    expect(lines.at(-1)).toBe(
      'Check: 5982 ok, 20 missing, 0 failed, 0 unverified; 3000 governed service(s). Grant what is missing (→ lines above), then run governor check again.',
    );
  });

  it('lists each check of a small fleet, and each of a few alike ones', () => {
    const text = renderCheck('policy.yaml', 'enforce', report(ALIKE_LISTED, 2), c);
    for (let i = 0; i < ALIKE_LISTED; i++)
      expect(text).toContain(`service p/us-central1/svc-${String(i).padStart(4, '0')}`);
    expect(text).not.toMatch(/\d+ services/);
    expect(text.match(/^ {2}MISSING /gm)).toHaveLength(2);
  });
});

describe('the closing line of a failed check', () => {
  const failedCall: CheckItem = {
    subject: 'topic projects/p/topics/t',
    permission: 'pubsub.topics.publish',
    status: 'error',
    detail: 'Pub/Sub could not be reached',
    fix: 'check that Pub/Sub can be reached',
  };
  const last = (r: CheckReport) =>
    renderCheck('policy.yaml', 'enforce', r, c).trimEnd().split('\n').at(-1) ?? '';

  it('asks to mend what failed, not to grant, when nothing is missing', () => {
    const r = report(2, 0);
    const line = last({ ...r, items: [...r.items.slice(0, -1), failedCall] });
    expect(line).toContain('0 missing, 1 failed');
    expect(line).toContain('Mend what failed (→ lines above), then run governor check again.');
    expect(line).not.toContain('Grant');
  });

  it("shows Google's error text and the names it listed on one line each", () => {
    const r = report(2, 0);
    const hostile: CheckItem = {
      subject: 'service p/us-central1/x\u001b[2J',
      permission: null,
      status: 'error',
      detail: 'INTERNAL: boom\nFAILED  forged line\u001b]0;title\u0007',
      fix: null,
    };
    const text = renderCheck('policy.yaml', 'enforce', { ...r, items: [...r.items, hostile] }, c);
    expect(text).toContain('service p/us-central1/x [2J');
    expect(text).toContain('INTERNAL: boom FAILED  forged line ]0;title');
    expect(text).not.toMatch(/^FAILED/m);
    expect(text.replace(/\n/g, '')).not.toMatch(/\p{Cc}/u);
  });

  it("shows the policy file's name on one line, without its control characters", () => {
    // A file name is anyone's text (a repository's, a script's): its escape acted on the terminal.
    const text = renderCheck('p\u001b]0;title\u0007\u202e/policy.yaml', 'enforce', report(2, 0), c);
    expect(text.split('\n')[0]).toBe('Governor check of p ]0;title /policy.yaml (mode: enforce)');
  });

  it('asks for both when something is missing and something failed', () => {
    const r = report(2, 1);
    const line = last({ ...r, items: [...r.items.slice(0, -1), failedCall] });
    expect(line).toContain('1 missing, 1 failed');
    expect(line).toContain('Grant what is missing and mend what failed (→ lines above)');
  });
});
