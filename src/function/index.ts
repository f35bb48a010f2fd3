import { cloudEvent, http, type CloudEvent } from '@google-cloud/functions-framework';
import { jsonLogger } from '../log.js';
import { handle } from './handler.js';

/**
 * The Cloud Function (2nd gen, functions-framework). Two entry points, one run:
 * - `governorHttp`: Cloud Scheduler calls it with an OIDC token; the JSON body is optional.
 * - `governorEvent`: the Pub/Sub-trigger variant; the message data is the same optional JSON.
 */
const log = jsonLogger(process.stdout);

http('governorHttp', async (req, res) => {
  try {
    const answer = await handle(req.body, process.env, log);
    res.status(answer.status).json(answer.body);
  } catch (e) {
    log.log(
      'ERROR',
      `unexpected failure: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
    );
    res.status(500).json({ error: 'unexpected failure; see the logs' });
  }
});

interface PubSubEventData {
  message?: { data?: string };
}

cloudEvent<PubSubEventData>('governorEvent', async (event: CloudEvent<PubSubEventData>) => {
  const text = event.data?.message?.data
    ? Buffer.from(event.data.message.data, 'base64').toString('utf8')
    : '';
  let payload: unknown = undefined;
  if (text.trim() !== '') {
    try {
      payload = JSON.parse(text);
    } catch (e) {
      // Redelivering a message that is not JSON cannot help: log it and let it go.
      log.log('ERROR', `ignored a trigger message that is not JSON: ${(e as Error).message}`);
      return;
    }
  }
  const answer = await handle(payload, process.env, log);
  if (answer.status === 400) {
    log.log('ERROR', `ignored a bad trigger message: ${String(answer.body.error)}`);
    return;
  }
  // A failed run throws so that the invocation is reported as failed (logs, error metrics). It is
  // not redelivered: the module's trigger sets RETRY_POLICY_DO_NOT_RETRY, and the next scheduled
  // run is the retry (a redelivered, stale tick would run again for up to a day, behind fresh ones).
  if (answer.status >= 500)
    throw new Error(`run failed: ${String(answer.body.error ?? answer.body.outcome)}`);
});
