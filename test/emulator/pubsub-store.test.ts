/**
 * The published messages kept are bounded, oldest dropped first: a publish carries up to 10 MB,
 * and an unbounded list filled the emulator's memory after a hundred or so.
 */
import { describe, expect, it } from 'vitest';
import { MAX_KEPT_CHARS, MAX_KEPT_MESSAGES, PubSubStore } from '../../src/emulator/pubsub-store.js';

const TOPIC = 'projects/test-project/topics/alerts';

function publish(store: PubSubStore, data: string) {
  return store.record({
    topic: TOPIC,
    data,
    dataBase64: Buffer.from(data).toString('base64'),
    attributes: {},
    orderingKey: '',
    publishTime: '2026-11-27T12:00:00.000Z',
    wallTime: '2026-11-27T12:00:00.000Z',
  });
}

describe('the published messages kept', () => {
  it('are bounded by default', () => {
    expect(MAX_KEPT_MESSAGES).toBe(100_000);
    expect(MAX_KEPT_CHARS).toBe(256 << 20);
  });

  it('keep the newest messages within the count, counting those dropped', () => {
    const store = new PubSubStore(3, 1 << 20);
    for (let i = 1; i <= 5; i++) publish(store, `m${i}`);
    expect(store.published().map((m) => m.data)).toEqual(['m3', 'm4', 'm5']);
    expect(store.published().map((m) => m.seq)).toEqual([3, 4, 5]);
    expect(store.dropped).toBe(2);
  });

  it('keep the newest messages within the size, and always the newest one', () => {
    // 'x' x 300 is 300 characters of text and 400 of base64: 700 a message.
    const store = new PubSubStore(100, 2000);
    for (let i = 0; i < 4; i++) publish(store, 'x'.repeat(300));
    expect(store.published()).toHaveLength(2);
    expect(store.dropped).toBe(2);
    const huge = publish(store, 'y'.repeat(3000));
    expect(store.published()).toEqual([huge]);
    expect(store.dropped).toBe(4);
  });
});
