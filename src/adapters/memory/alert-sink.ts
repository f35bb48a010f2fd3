import type { Alert } from '../../core/alert.js';
import { UnavailableError } from '../../core/errors.js';
import type { AlertSink, OutgoingMessage, PublishResult } from '../../ports/index.js';

/** An alert sink that keeps what it accepted, and fails (whole or part way) when told to. */
export class RecordingSink implements AlertSink {
  readonly delivered: Alert[] = [];
  failRate = 0;
  constructor(
    private readonly rnd: () => number = Math.random,
    private readonly onFault: (kind: string) => void = () => {},
  ) {}

  async publish(messages: readonly OutgoingMessage[]): Promise<PublishResult[]> {
    const fails = this.failRate > 0 && this.rnd() < this.failRate;
    const upTo = fails ? Math.floor(this.rnd() * messages.length) : messages.length;
    const results: PublishResult[] = [];
    for (const [i, m] of messages.entries()) {
      if (i >= upTo) {
        this.onFault(upTo === 0 ? 'publish-failed' : 'publish-partial');
        throw new UnavailableError(
          `UNAVAILABLE: injected: published ${upTo} of ${messages.length} message(s)`,
        );
      }
      this.delivered.push(m.data as Alert);
      results.push({ messageId: String(this.delivered.length), orderingKey: m.orderingKey });
    }
    return results;
  }
}
