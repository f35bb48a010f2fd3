import { UpstreamError } from '../core/errors.js';

/**
 * Where alerts go. Each alert is one message (JSON `data`, string `attributes`, one ordering key
 * per pool); `publish` settles only once every message was acknowledged, or once it is sure some
 * were not, so an alert never vanishes silently. Google's implementation is a Pub/Sub topic.
 */

/** One message to publish. */
export interface OutgoingMessage {
  /** Any JSON-serialisable value; published as its UTF-8 JSON text. */
  data: unknown;
  /** Filterable by subscriptions (`type`, `severity`, `status`, `project`, `region`, ...). */
  attributes: Record<string, string>;
  /** Messages with the same key reach subscribers in the order given. Must not be empty. */
  orderingKey: string;
}

/** What the server acknowledged for one message. */
export interface PublishResult {
  messageId: string;
  orderingKey: string;
}

/**
 * A publish that failed part-way: `results` has one slot per message given, its result if Pub/Sub
 * acknowledged it, `undefined` if not. A sink that knows which messages went out rejects with one
 * (the Pub/Sub sink's PublishError); any other rejection says nothing of them.
 */
export class PartialPublishError extends UpstreamError {
  constructor(
    message: string,
    readonly results: readonly (PublishResult | undefined)[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AlertSink {
  /**
   * Publishes the messages, keeping their order within each ordering key. Resolves with one
   * result per message, in the order given, once the server has acknowledged all of them; rejects
   * with an UpstreamError (a PartialPublishError when it knows which messages went out) if any
   * was still not acknowledged after the retries.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<PublishResult[]>;
  /**
   * Whether the caller may publish to the topic, asked without publishing (the topic's
   * `TestIamPermissions`). False also when the topic does not exist: TestIamPermissions answers
   * an empty set for a missing resource, not NOT_FOUND (google/iam/v1/iam_policy.proto). Throws
   * when it cannot be asked (no credentials: a CredentialsError; the service unreachable).
   * Absent on sinks that cannot be tested (in-memory ones): unverified.
   */
  canPublish?(): Promise<boolean>;
}
