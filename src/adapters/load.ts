/**
 * The Google adapters, loaded when a run first needs them rather than when the program starts.
 *
 * Google's client libraries are most of what the governor loads: each brings google-gax, gRPC and
 * its API's protos, which takes hundreds of milliseconds and tens of MiB before the first call.
 * The Cloud Function starts serving only once its entry point has loaded, so it must not load
 * them at start (docs/performance.md). A run loads what it uses: the Cloud Run, Monitoring and
 * Cloud Quotas clients always, Pub/Sub only when the policy names a topic, Firestore only when it
 * keeps the state there, the quota preferences client only when the policy files quota requests.
 *
 * Only the imports below are dynamic, and each stays in this folder, so the layer rules (only
 * adapters import Google's libraries) hold as they do for static imports. The types cost nothing
 * at run time.
 */
import type { FirestoreStateStoreOptions } from './firestore-store.js';
import type { GooglePorts } from './index.js';
import type { PubSubAlertSink, PubSubAlertSinkOptions } from './pubsub.js';
import type { QuotaPreferenceAdapter, QuotaPreferenceAdapterOptions } from './quota-preferences.js';
import type {
  AssetSearchPort,
  DiscoveryCacheStore,
  StateStore,
  WorkPublisher,
} from '../ports/index.js';

/** `createGooglePorts` (./index.ts), once the Cloud Run, Monitoring and Cloud Quotas clients are loaded. */
export async function loadGooglePorts(
  endpoint: Parameters<typeof import('./index.js').createGooglePorts>[0],
): Promise<GooglePorts> {
  const { createGooglePorts } = await import('./index.js');
  return createGooglePorts(endpoint);
}

/** `createPubSubAlertSink` (./pubsub.ts), once the Pub/Sub client is loaded. */
export async function loadPubSubAlertSink(
  options: PubSubAlertSinkOptions,
): Promise<PubSubAlertSink> {
  const { createPubSubAlertSink } = await import('./pubsub.js');
  return createPubSubAlertSink(options);
}

/** `createFirestoreStateStore` (./firestore-store.ts), once the Firestore client is loaded. */
export async function loadFirestoreStateStore(
  options: FirestoreStateStoreOptions = {},
): Promise<StateStore & DiscoveryCacheStore> {
  const { createFirestoreStateStore } = await import('./firestore-store.js');
  return createFirestoreStateStore(options);
}

/** `createQuotaPreferenceAdapter` (./quota-preferences.ts), only for a policy that files quota requests. */
export async function loadQuotaPreferenceAdapter(
  options: QuotaPreferenceAdapterOptions,
): Promise<QuotaPreferenceAdapter> {
  const { createQuotaPreferenceAdapter } = await import('./quota-preferences.js');
  return createQuotaPreferenceAdapter(options);
}

/** `createAssetSearchAdapter` (./assets.ts), only for a policy that discovers its projects. */
export async function loadAssetSearchAdapter(
  options: Parameters<typeof import('./assets.js').createAssetSearchAdapter>[0],
): Promise<AssetSearchPort> {
  const { createAssetSearchAdapter } = await import('./assets.js');
  return createAssetSearchAdapter(options);
}

/** `createWorkPublisher` (./work-topic.ts), only for a policy that fans out to a work topic. */
export async function loadWorkPublisher(
  options: Parameters<typeof import('./work-topic.js').createWorkPublisher>[0],
): Promise<WorkPublisher> {
  const { createWorkPublisher } = await import('./work-topic.js');
  return createWorkPublisher(options);
}
