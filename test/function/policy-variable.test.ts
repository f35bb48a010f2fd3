import { describe, expect, it } from 'vitest';
import { functionPolicy } from '../../src/function/handler.js';
import { handleDispatch } from '../../src/function/org.js';
import { InputError } from '../../src/core/errors.js';
import { memoryLogger } from '../../src/log.js';

/** GOVERNOR_POLICY holds the policy's text; the function says so when it holds something else. */

function refusal(policyText: string | null): string {
  try {
    functionPolicy({ policyText });
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('GOVERNOR_POLICY', () => {
  it('names a file name given where the policy belongs, rather than "received string"', () => {
    for (const path of ['/workspace/policy.yaml', 'policy.json', ' ./p.yml\n', 'gov\\policy']) {
      const told = refusal(path);
      expect(told).toContain('looks like a file name');
      expect(told).toContain('must hold the policy itself');
      expect(told).not.toContain('received string');
    }
  });

  it('reads a policy, in YAML or JSON, and refuses a bare word by the schema', () => {
    expect(functionPolicy({ policyText: 'version: 1\nprojects: [p]\n' }).projects).toEqual(['p']);
    expect(functionPolicy({ policyText: '{"version": 1, "projects": ["p"]}' }).projects).toEqual([
      'p',
    ]);
    expect(refusal('hello')).toContain('expected object, received string');
    // A policy's own text holds slashes (its topics): it is read, not taken for a file name.
    const topic = 'projects/p/topics/gpu-governor-alerts';
    for (const text of [
      `{"version": 1, "projects": ["p"], "alerts": {"topic": "${topic}"}}`,
      `version: 1\nprojects: [p]\nalerts: {topic: ${topic}}\n`,
    ])
      expect(functionPolicy({ policyText: text }).alerts.topic, text).toBe(topic);
    expect(refusal(null)).toContain('GOVERNOR_POLICY is not set');
  });

  it('a policy with no fanout.topic: governorDispatch answers 500 saying so, as it logs it', async () => {
    const log = memoryLogger();
    const answer = await handleDispatch(
      undefined,
      { GOVERNOR_POLICY: '{"version": 1, "projects": ["p"]}' },
      log,
    );
    const said = 'misconfigured: the policy has no fanout.topic to dispatch to';
    expect(answer).toEqual({ status: 500, body: { error: said } });
    expect(log.lines.map((l) => [l.severity, l.message])).toEqual([['ERROR', said]]);
  });
});
