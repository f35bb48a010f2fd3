import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleErrorLine, unexpectedLine } from '../../src/function/console-error.js';
import { ERROR_EVENT } from '../../src/log.js';

/**
 * What reaches the function's console.error comes from the framework, Express and libraries, and
 * may be anything. The function logs it as one structured line; it must never throw (the
 * framework calls it from its handler of an uncaught exception) nor lose the line.
 */

const consoleError = console.error;
const write = process.stdout.write.bind(process.stdout);
let out = '';

beforeAll(async () => {
  await import('../../src/function/index.js');
});

afterAll(() => {
  console.error = consoleError;
});

/** The lines the function's console.error wrote for `args`. */
function logged(...args: unknown[]): Record<string, unknown>[] {
  out = '';
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  try {
    console.error(...args);
  } finally {
    process.stdout.write = write;
  }
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const thrower = (what: string) => () => {
  throw new Error(`${what} SECRET`);
};

describe("the function's console.error, given hostile values", () => {
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const errorWith = (field: string) => {
    const e = new Error('an error');
    Object.defineProperty(e, field, { get: thrower(field) });
    return e;
  };
  const hostile: [string, unknown][] = [
    [
      'a getter that throws',
      {
        get type() {
          return thrower('type')();
        },
      },
    ],
    [
      'a 4xx whose status getter throws',
      {
        expose: true,
        get status() {
          return thrower('status')();
        },
      },
    ],
    [
      'a Proxy whose every trap throws',
      new Proxy(
        {},
        {
          get: thrower('get'),
          getOwnPropertyDescriptor: thrower('gopd'),
          getPrototypeOf: thrower('proto'),
          has: thrower('has'),
          ownKeys: thrower('ownKeys'),
        },
      ),
    ],
    ['a revoked Proxy', revocable.proxy],
    ['an Error whose message throws', errorWith('message')],
    ['an Error whose name throws', errorWith('name')],
    ['an Error whose stack throws', errorWith('stack')],
    [
      'a custom inspect that throws',
      { [Symbol.for('nodejs.util.inspect.custom')]: thrower('inspect') },
    ],
    ['a circular object', circular],
    ['a Symbol', Symbol('s')],
    ['a BigInt', 10n],
  ];
  for (const [name, value] of hostile) {
    it(`${name}: one ERROR line, the other values kept`, () => {
      let lines: Record<string, unknown>[] = [];
      expect(() => (lines = logged('before', value, 'after'))).not.toThrow();
      expect(lines).toHaveLength(1);
      expect(lines[0]?.severity).toBe('ERROR');
      expect(String(lines[0]?.message)).toMatch(/^before .+ after$/s);
      // What a getter threw is not printed: it is not what was logged.
      expect(out).not.toContain('SECRET');
    });
  }

  it('a huge string: one line, cut', () => {
    const lines = logged('x'.repeat(1_000_000));
    expect(lines).toHaveLength(1);
    expect(String(lines[0]?.message).length).toBeLessThan(10_000);
  });
});

describe("a failed run's error, as the framework prints it", () => {
  it('is left out once, its run having logged why; the same text printed again is logged', () => {
    const announced = new Set(['run failed: the run deadline had passed']);
    expect(consoleErrorLine(['run failed: the run deadline had passed'], announced)).toBeNull();
    expect(consoleErrorLine(['run failed: the run deadline had passed'], announced)).toMatchObject({
      severity: 'ERROR',
      message: 'run failed: the run deadline had passed',
    });
  });

  it('is logged when printed with more values: they are not in the line the run logged', () => {
    const announced = new Set(['run failed: the run deadline had passed']);
    expect(
      consoleErrorLine(['run failed: the run deadline had passed', 'and more'], announced),
    ).toMatchObject({
      severity: 'ERROR',
      message: 'run failed: the run deadline had passed and more',
    });
    // Still left out once when the framework prints it alone.
    expect(consoleErrorLine(['run failed: the run deadline had passed'], announced)).toBeNull();
  });
});

describe('unexpectedLine: an unexpected failure, one error event for Error Reporting', () => {
  // Error Reporting takes an entry with a stack trace, or one typed as a ReportedErrorEvent
  // (https://cloud.google.com/error-reporting/docs/formatting-error-messages): an ERROR line with
  // neither is no event, and a failure nobody is told of.
  it('carries the stack of an Error that has one', () => {
    const e = new Error('boom');
    expect(unexpectedLine('governorUnit: ', e)).toEqual({
      severity: 'ERROR',
      message: 'governorUnit: unexpected failure: boom',
      fields: { stack_trace: e.stack },
    });
  });

  it('is typed as an error event when what was thrown has no stack', () => {
    const noStack = new Error('lost its stack');
    noStack.stack = undefined;
    for (const thrown of ['a thrown string', noStack, { code: 7 }, undefined]) {
      const line = unexpectedLine('', thrown);
      expect(line.severity).toBe('ERROR');
      expect(line.message).toMatch(/^unexpected failure: /);
      expect(line.message).not.toContain('\n');
      expect(line.fields, String(thrown)).toEqual(ERROR_EVENT);
    }
  });
});
