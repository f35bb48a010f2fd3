/**
 * The call log is bounded (attack finding 1): strings in logged requests are cut, and the log
 * keeps only the newest calls within its byte and entry bounds, so big requests sent for a while
 * cannot fill the emulator's memory (V8 died with "JavaScript heap out of memory") or make
 * `GET /calls` too large to answer.
 */
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { MAX_CALL_LOG_BYTES } from '../../src/emulator/context.js';
import { LOGGED_TEXT } from '../../src/emulator/server.js';
import { codeOf, emulatorAndClients, PARENT } from './helpers.js';

const t = emulatorAndClients();

describe('the call log', () => {
  it('cuts a long string of a logged request, saying how long it was', async () => {
    t.emulator.resetCalls();
    const token = 'A'.repeat(1 << 20);
    const refused = await codeOf(
      t.clients.services.listServices(
        { parent: PARENT, pageToken: token },
        { autoPaginate: false },
      ),
    );
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    const [call] = t.emulator.calls();
    const logged = (call?.request as { page_token?: string }).page_token ?? '';
    expect(logged.length).toBeLessThan(LOGGED_TEXT + 100);
    expect(logged.startsWith('A'.repeat(LOGGED_TEXT))).toBe(true);
    expect(logged).toContain(`${1 << 20} characters`);
    const res = await fetch(`${t.emulator.adminUrl}/calls`);
    expect(res.status).toBe(200);
    expect((await res.text()).length).toBeLessThan(64 << 10);
  });

  it('drops the oldest calls once the requests it keeps pass its byte bound', async () => {
    t.emulator.resetCalls();
    // 30,000 mask paths (and a stale etag, so nothing is written): each request logs about
    // 840 KB of JSON.
    const paths = Array.from({ length: 30_000 }, () => 'scaling.max_instance_count');
    const rounds = Math.ceil(MAX_CALL_LOG_BYTES / (800 * 1000)) + 4;
    for (let i = 0; i < rounds; i++) {
      await codeOf(
        t.clients.services.updateService({
          service: { name: `${PARENT}/services/alpha`, etag: '"stale"' },
          updateMask: { paths },
        }),
      );
    }
    const kept = t.emulator.calls();
    expect(kept.length).toBeLessThan(rounds);
    expect(kept.length + t.emulator.droppedCalls()).toBe(rounds);
    const bytes = kept.reduce((sum, c) => sum + JSON.stringify(c.request).length, 0);
    expect(bytes).toBeLessThanOrEqual(MAX_CALL_LOG_BYTES);
    const res = await fetch(`${t.emulator.adminUrl}/calls`);
    expect(res.headers.get('x-emulator-calls-dropped')).toBe(String(t.emulator.droppedCalls()));
    expect((JSON.parse(await res.text()) as unknown[]).length).toBe(kept.length);
    // The newest call is the one kept last.
    expect(kept.at(-1)?.seq).toBe(Math.max(...kept.map((c) => c.seq)));
  }, 60_000);
});
