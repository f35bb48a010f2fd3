/* global process, fetch, Buffer */
// A Cloud Run function (Pub/Sub trigger) that posts the GPU governor's alerts to Slack.
// Deploy (docs/alerts.md):
//   gcloud functions deploy gpu-governor-slack --gen2 --runtime=nodejs22 --region=REGION \
//     --source=examples/subscribers/slack-relay --entry-point=relayAlert \
//     --trigger-topic=gpu-governor-alerts --set-secrets=SLACK_WEBHOOK_URL=slack-webhook:latest
import * as functions from '@google-cloud/functions-framework';

const ICONS = {
  INFO: ':information_source:',
  WARNING: ':warning:',
  ERROR: ':x:',
  CRITICAL: ':rotating_light:',
};

/** The Slack message for one alert: one line, its status, where, and the governor's summary. */
export function slackText(alert) {
  const where = [alert.project, alert.region, alert.service].filter(Boolean).join('/');
  const status =
    alert.status === 'resolved' ? 'resolved' : alert.status === 'firing' ? 'firing' : 'event';
  return `${ICONS[alert.severity] ?? ''} *${alert.type}* ${status} in ${where}: ${alert.summary}`;
}

/**
 * Handles the CloudEvent of one Pub/Sub message. INFO events (writes, quota changes) are left out
 * unless RELAY_INFO=true. A Slack answer other than 2xx throws, so the invocation is marked failed.
 */
export async function relay(cloudEvent, env = process.env, post = fetch) {
  const message = cloudEvent.data?.message;
  if (!message?.data) return 'no data';
  const alert = JSON.parse(Buffer.from(message.data, 'base64').toString('utf8'));
  if (alert.severity === 'INFO' && env.RELAY_INFO !== 'true') return 'skipped';
  const response = await post(env.SLACK_WEBHOOK_URL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: slackText(alert) }),
  });
  if (!response.ok) throw new Error(`Slack answered ${response.status} for ${alert.id}`);
  return 'posted';
}

functions.cloudEvent('relayAlert', (cloudEvent) => relay(cloudEvent));
