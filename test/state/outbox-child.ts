/**
 * A run's last outbox step in a process of its own, for the crash test of the Firestore store
 * (firestore-store.int.test.ts): removes the given published entries and acknowledges the dropped
 * count, against the Firestore emulator named by FIRESTORE_EMULATOR_HOST. Arguments: the Firestore
 * project, the governed project, the entry ids (JSON) and the count announced. Prints `done`.
 */
import { createFirestoreStateStore } from '../../src/adapters/firestore-store.js';

const [projectId, project, ids, announced] = process.argv.slice(2);
if (!projectId || !project || !ids || !announced) {
  throw new Error('usage: outbox-child PROJECT_ID PROJECT IDS_JSON ANNOUNCED');
}
const store = createFirestoreStateStore({ projectId, timeoutMs: 30_000 });
await store.removeOutbox(project, JSON.parse(ids) as string[], Number(announced));
process.stdout.write('done\n');
await store.close();
