import { status } from '@grpc/grpc-js';
import { CloudQuotasClient, protos } from '@google-cloud/cloudquotas';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { clientConfig } from '../../src/adapters/client-config.js';
import {
  createQuotaPreferenceAdapter,
  type QuotaPreferenceAdapter,
} from '../../src/adapters/quota-preferences.js';
import { createQuotaAdapter } from '../../src/adapters/quotas.js';
import {
  decideQuotaPreference,
  quotaPreferences,
  RpcError,
  startEmulator,
  type RunningEmulator,
} from '../../src/emulator/index.js';
import {
  ConflictError,
  InputError,
  NotFoundError,
  UnavailableError,
  UpstreamError,
} from '../../src/core/errors.js';

/**
 * Quota preferences through the real @google-cloud/cloudquotas client over gRPC to the emulator:
 * create, get, list, update, Google's refusals, the state a test moves (pending → granted or
 * denied), and another actor filing or changing a preference between a read and a write.
 */

const P = 'qp-project';
const US = 'us-central1';
const EU = 'europe-west4';
const L4 = 'NvidiaL4GpuAllocPerProjectRegion';
const L4_NZ = 'NvidiaL4GpuAllocNoZonalRedundancyPerProjectRegion';
/** Google's check that a quota does not fall by more than 10 percent, to ignore by name. */
const PERCENTAGE_TOO_HIGH =
  protos.google.api.cloudquotas.v1.QuotaSafetyCheck.QUOTA_DECREASE_PERCENTAGE_TOO_HIGH;

const fleet = {
  start: '2026-11-27T12:00:00Z',
  warmupMinutes: 0,
  projects: [
    {
      id: P,
      pools: [
        { region: US, quota: 4 },
        { region: EU, quota: 4 },
        { region: US, zonalRedundancy: false, quota: 2 },
        { region: EU, zonalRedundancy: false, quota: 3 },
      ],
      services: [],
    },
  ],
};

let emulator: RunningEmulator;
let prefs: QuotaPreferenceAdapter;
/** Another actor: a person with the raw client. */
let other: CloudQuotasClient;

const file = (over: Partial<Parameters<QuotaPreferenceAdapter['createPreference']>[0]> = {}) =>
  prefs.createPreference({
    project: P,
    id: 'gpu-governor-us-central1-l4',
    quotaId: L4,
    region: US,
    preferredValue: 6,
    justification: 'Sustained pressure: evidence follows.',
    contactEmail: 'ops@example.com',
    ...over,
  });

async function rawCode(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as { code?: number }).code;
  }
}

beforeAll(async () => {
  emulator = await startEmulator({ fleet, speed: 'manual' });
  prefs = createQuotaPreferenceAdapter({ emulatorHost: emulator.host, retry: { maxAttempts: 2 } });
  other = new CloudQuotasClient(clientConfig({ emulatorHost: emulator.host }).options);
});

afterAll(async () => {
  await prefs.close();
  await other.close();
  await emulator.stop();
});

describe('quota preferences over gRPC', () => {
  it('an increase is filed pending, with a trace id; get and list show it; contact email is never answered', async () => {
    const created = await file();
    expect(created).toMatchObject({
      name: `projects/${P}/locations/global/quotaPreferences/gpu-governor-us-central1-l4`,
      quotaId: L4,
      region: US,
      preferredValue: 6,
      grantedValue: null,
      reconciling: true,
    });
    expect(created.traceId).not.toBe('');
    expect(await prefs.getPreference(created.name)).toEqual(created);
    expect((await prefs.listPreferences(P)).map((p) => p.name)).toEqual([created.name]);
    const [raw] = await other.getQuotaPreference({ name: created.name });
    expect(raw.contactEmail).toBe('');
    expect(quotaPreferences(emulator.model)[0]?.contactEmail).toBe('ops@example.com');
  });

  it('granted: reconciling ends, granted value set, and the quota info reads the new quota', async () => {
    const name = `projects/${P}/locations/global/quotaPreferences/gpu-governor-us-central1-l4`;
    decideQuotaPreference(emulator.model, emulator.now().getTime(), { name, decision: 'granted' });
    const after = await prefs.getPreference(name);
    expect(after).toMatchObject({ reconciling: false, grantedValue: 6, stateDetail: 'Approved' });
    const quotas = createQuotaAdapter({ emulatorHost: emulator.host });
    try {
      expect(
        await quotas.gpuQuota({
          project: P,
          region: US,
          accelerator: 'nvidia-l4',
          zonalRedundancy: true,
        }),
      ).toBe(6);
    } finally {
      await quotas.close();
    }
    expect(() => decideQuotaPreference(emulator.model, 0, { name, decision: 'denied' })).toThrow(
      /not pending/,
    );
  });

  it('denied: reconciling ends with the old value granted and a state detail; the quota stays', async () => {
    const created = await file({ id: 'nz', quotaId: L4_NZ, preferredValue: 5 });
    decideQuotaPreference(emulator.model, emulator.now().getTime(), {
      name: created.name,
      decision: 'denied',
      stateDetail: 'Denied: not enough capacity',
    });
    expect(await prefs.getPreference(created.name)).toMatchObject({
      reconciling: false,
      grantedValue: 2,
      stateDetail: 'Denied: not enough capacity',
    });
  });

  it('an update moves the value and is pending again; a stale etag is a ConflictError', async () => {
    const name = `projects/${P}/locations/global/quotaPreferences/nz`;
    const read = await prefs.getPreference(name);
    const changed = await prefs.updatePreference({
      name,
      etag: read.etag,
      preferredValue: 4,
      justification: 'more',
      contactEmail: 'ops@example.com',
    });
    expect(changed).toMatchObject({ preferredValue: 4, reconciling: true, justification: 'more' });
    await expect(
      prefs.updatePreference({
        name,
        etag: read.etag,
        preferredValue: 3,
        justification: 'x',
        contactEmail: 'ops@example.com',
      }),
    ).rejects.toBeInstanceOf(ConflictError);
  });

  it('an update sends the contact email it is given, not the one the preference was filed with', async () => {
    // contact_email is input only and required for an increase: a raise of someone else's
    // preference must carry the policy's address, so the update mask names it ("When requesting
    // a quota increase, the email address is required": QuotaPreference.contact_email,
    // https://cloud.google.com/php/docs/reference/cloud-quotas/latest/V1.QuotaPreference).
    const [filed] = await other.createQuotaPreference({
      parent: `projects/${P}/locations/global`,
      quotaPreferenceId: 'someone-elses-contact',
      quotaPreference: {
        service: 'run.googleapis.com',
        quotaId: L4,
        dimensions: { region: 'asia-northeast1' },
        quotaConfig: { preferredValue: '5' },
        contactEmail: 'someone@example.com',
      },
    });
    const name = String(filed.name);
    const read = await prefs.getPreference(name);
    await prefs.updatePreference({
      name,
      etag: read.etag,
      preferredValue: 7,
      justification: 'more',
      contactEmail: 'gpu-platform@example.com',
    });
    expect(quotaPreferences(emulator.model).find((p) => p.name === name)).toMatchObject({
      contactEmail: 'gpu-platform@example.com',
    });
  });

  it('another actor files for the same quota and region between our read and our write: ConflictError, nothing doubled', async () => {
    const before = await prefs.listPreferences(P);
    expect(before.some((p) => p.region === EU)).toBe(false);
    // Someone files through the console between the governor's list and its create.
    await other.createQuotaPreference({
      parent: `projects/${P}/locations/global`,
      quotaPreferenceId: 'by-hand',
      quotaPreference: {
        service: 'run.googleapis.com',
        quotaId: L4,
        dimensions: { region: EU },
        quotaConfig: { preferredValue: '8' },
        contactEmail: 'someone@example.com',
      },
    });
    await expect(file({ id: 'gpu-governor-eu', region: EU })).rejects.toBeInstanceOf(ConflictError);
    const after = await prefs.listPreferences(P);
    expect(after.filter((p) => p.region === EU && p.quotaId === L4)).toHaveLength(1);
  });

  it('another actor changes the preference between our read and our update: the update is refused', async () => {
    const name = `projects/${P}/locations/global/quotaPreferences/by-hand`;
    const read = await prefs.getPreference(name);
    const [current] = await other.getQuotaPreference({ name });
    await other.updateQuotaPreference({
      quotaPreference: {
        ...current,
        quotaConfig: { preferredValue: '10' },
        contactEmail: 'someone@example.com',
      },
      updateMask: { paths: ['quota_config.preferred_value', 'contact_email'] },
    });
    await expect(
      prefs.updatePreference({
        name,
        etag: read.etag,
        preferredValue: 12,
        justification: 'x',
        contactEmail: 'ops@example.com',
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await prefs.getPreference(name)).preferredValue).toBe(10);
  });

  it('rejects what Google rejects, each with INVALID_ARGUMENT, NOT_FOUND or PERMISSION_DENIED', async () => {
    const parent = `projects/${P}/locations/global`;
    const base = {
      service: 'run.googleapis.com',
      quotaId: L4_NZ,
      dimensions: { region: EU },
      quotaConfig: { preferredValue: '9' },
      contactEmail: 'ops@example.com',
    };
    const create = (over: object, req: object = {}) =>
      rawCode(
        other.createQuotaPreference({ parent, quotaPreference: { ...base, ...over }, ...req }),
      );
    expect(await create({ contactEmail: '' })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ contactEmail: 'not-an-email' })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ quotaId: '' })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ quotaId: 'NoSuchQuota' })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ service: '' })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ quotaConfig: { preferredValue: '-2' } })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ quotaConfig: { preferredValue: '99999999999' } })).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await create({ quotaConfig: {} })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ dimensions: { user: 'me' } })).toBe(status.INVALID_ARGUMENT);
    expect(await create({ dimensions: { zone: 'us-central1-a' } })).toBe(status.INVALID_ARGUMENT);
    expect(await create({}, { quotaPreferenceId: 'Bad_Id!' })).toBe(status.INVALID_ARGUMENT);
    expect(await create({}, { quotaPreferenceId: 'x'.repeat(64) })).toBe(status.INVALID_ARGUMENT);
    expect(
      await rawCode(
        other.createQuotaPreference({
          parent: `projects/${P}/locations/us-central1`,
          quotaPreference: base,
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    expect(
      await rawCode(
        other.createQuotaPreference({
          parent: 'projects/nobody/locations/global',
          quotaPreference: base,
        }),
      ),
      // Permission before existence (AIP-211): a project the caller cannot see is denied.
    ).toBe(status.PERMISSION_DENIED);
    // A malformed project id is refused before anything is looked up, as quota infos refuse it;
    // "Listing across different resource containers (such as 'projects/-') is not allowed"
    // (ListQuotaPreferencesRequest.parent, cloudquotas.proto).
    for (const call of [
      other.listQuotaPreferences(
        { parent: 'projects/-/locations/global' },
        { autoPaginate: false },
      ),
      other.getQuotaPreference({
        name: 'projects/Bad_Project/locations/global/quotaPreferences/x',
      }),
      other.createQuotaPreference({
        parent: `projects/${'p'.repeat(31)}/locations/global`,
        quotaPreference: base,
      }),
    ])
      expect(await rawCode(call)).toBe(status.INVALID_ARGUMENT);
    // A decrease needs no contact email, applies at once and has no trace id (3 to 1 is more
    // than 10 percent: Google's safety check is ignored by name).
    const [decrease] = await other.createQuotaPreference({
      parent,
      quotaPreferenceId: 'down',
      quotaPreference: { ...base, quotaConfig: { preferredValue: '1' }, contactEmail: '' },
      ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
    });
    expect(decrease.reconciling).toBe(false);
    expect(decrease.quotaConfig?.traceId).toBe('');
    // Dimensions are immutable.
    expect(
      await rawCode(
        other.updateQuotaPreference({
          quotaPreference: { ...decrease, dimensions: { region: US } },
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    // Without a mask every field is overwritten: the quota or service it applies to cannot be
    // moved that way either (Google states no rule; the emulator takes the strict side).
    for (const moved of [{ quotaId: L4 }, { service: 'compute.googleapis.com' }])
      expect(
        await rawCode(
          other.updateQuotaPreference({
            quotaPreference: { ...decrease, ...moved, contactEmail: 'ops@example.com' },
          }),
        ),
        JSON.stringify(moved),
      ).toBe(status.INVALID_ARGUMENT);
    expect(quotaPreferences(emulator.model).find((p) => p.name === decrease.name)).toMatchObject({
      quotaId: L4_NZ,
      service: 'run.googleapis.com',
    });
    expect(
      await rawCode(
        other.getQuotaPreference({ name: `projects/${P}/locations/global/quotaPreferences/none` }),
      ),
    ).toBe(status.NOT_FOUND);
  });

  it("answers another service's quota preference as not emulated, never refused as Google would not", async () => {
    // QuotaPreference.service (google/api/cloudquotas/v1/resources.proto): "The name of the service
    // to which the quota preference is applied", any service's; the emulator models Cloud Run's
    // quotas alone: UNIMPLEMENTED, not INVALID_ARGUMENT.
    const answer = await rawCode(
      other.createQuotaPreference({
        parent: `projects/${P}/locations/global`,
        quotaPreferenceId: 'compute-cpus',
        quotaPreference: {
          service: 'compute.googleapis.com',
          quotaId: 'CPUS-per-project-region',
          dimensions: { region: EU },
          quotaConfig: { preferredValue: '9' },
          contactEmail: 'ops@example.com',
        },
      }),
    );
    expect(answer).toBe(status.UNIMPLEMENTED);
  });

  it("takes a preference id with underscores, as Google's own example files one, and the governor reads it", async () => {
    // `gcloud quotas preferences create ... --preference-id=example_default-limit_us-central1`
    // (https://cloud.google.com/sdk/gcloud/reference/beta/quotas/preferences/create): Google
    // creates preference ids with underscores.
    const own = await startEmulator({ fleet, speed: 'manual' });
    const raw = new CloudQuotasClient(clientConfig({ emulatorHost: own.host }).options);
    const reader = createQuotaPreferenceAdapter({ emulatorHost: own.host });
    try {
      const [made] = await raw.createQuotaPreference({
        parent: `projects/${P}/locations/global`,
        quotaPreferenceId: 'example_default-limit_us-central1',
        quotaPreference: {
          service: 'run.googleapis.com',
          quotaId: L4,
          dimensions: { region: US },
          quotaConfig: { preferredValue: '6' },
          contactEmail: 'someone@example.com',
        },
      });
      expect(made.name).toBe(
        `projects/${P}/locations/global/quotaPreferences/example_default-limit_us-central1`,
      );
      const listed = await reader.listPreferences(P);
      expect(listed).toEqual([
        expect.objectContaining({ name: made.name, preferredValue: 6, region: US }),
      ]);
      expect(listed[0]).not.toHaveProperty('unreadable');
    } finally {
      await reader.close();
      await raw.close();
      await own.stop();
    }
  });

  it('keeps quota_config.annotations, and an update_mask may name them: the mask overwrites the fields it names', async () => {
    // QuotaConfig.annotations is OPTIONAL, "for clients to store small amounts of arbitrary data"
    // (resources.proto; https://cloud.google.com/php/docs/reference/cloud-quotas/latest/V1.QuotaConfig),
    // and "A field will be overwritten if it is in the mask" (UpdateQuotaPreferenceRequest;
    // https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences/patch).
    // Before, the emulator dropped them and refused the path in a mask.
    const own = await startEmulator({ fleet, speed: 'manual' });
    const raw = new CloudQuotasClient(clientConfig({ emulatorHost: own.host }).options);
    try {
      const [made] = await raw.createQuotaPreference({
        parent: `projects/${P}/locations/global`,
        quotaPreferenceId: 'annotated',
        quotaPreference: {
          service: 'run.googleapis.com',
          quotaId: L4,
          dimensions: { region: US },
          quotaConfig: { preferredValue: '3', annotations: { team: 'ml' } },
        },
        ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
      });
      expect(made.quotaConfig?.annotations).toEqual({ team: 'ml' });
      const name = made.name ?? '';
      expect((await raw.getQuotaPreference({ name }))[0].quotaConfig?.annotations).toEqual({
        team: 'ml',
      });
      // The annotations alone: the preferred value the request leaves out is kept.
      const [relabelled] = await raw.updateQuotaPreference({
        quotaPreference: {
          name,
          etag: made.etag,
          quotaConfig: { annotations: { team: 'search' } },
        },
        updateMask: { paths: ['quota_config.annotations'] },
      });
      expect(relabelled.quotaConfig?.annotations).toEqual({ team: 'search' });
      expect(relabelled.quotaConfig?.preferredValue).toBe('3');
      // The value alone: the annotations are kept.
      const [moved] = await raw.updateQuotaPreference({
        quotaPreference: { name, quotaConfig: { preferredValue: '2' } },
        updateMask: { paths: ['quota_config.preferred_value'] },
        ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
      });
      expect(moved.quotaConfig).toMatchObject({
        preferredValue: '2',
        annotations: { team: 'search' },
      });
      // The whole quota_config: both, as sent.
      const [whole] = await raw.updateQuotaPreference({
        quotaPreference: { name, quotaConfig: { preferredValue: '2' } },
        updateMask: { paths: ['quota_config'] },
      });
      expect(whole.quotaConfig).toMatchObject({ preferredValue: '2', annotations: {} });
      // Google states no limit; the emulator keeps at most 256 KiB, never megabytes.
      expect(
        await rawCode(
          raw.updateQuotaPreference({
            quotaPreference: { name, quotaConfig: { annotations: { big: 'x'.repeat(256 << 10) } } },
            updateMask: { paths: ['quota_config.annotations'] },
          }),
        ),
      ).toBe(status.INVALID_ARGUMENT);
    } finally {
      await raw.close();
      await own.stop();
    }
  });

  it('an update_mask of "*" overwrites every field, as no mask does (AIP-134), rather than being refused', async () => {
    // "Update masks must support a special value `*`, meaning full replacement (the equivalent of
    // PUT)" (https://google.aip.dev/134); UpdateQuotaPreferenceRequest: "If the user does not
    // provide a mask then all fields will be overwritten" (cloudquotas.proto).
    const own = await startEmulator({ fleet, speed: 'manual' });
    const raw = new CloudQuotasClient(clientConfig({ emulatorHost: own.host }).options);
    try {
      const [made] = await raw.createQuotaPreference({
        parent: `projects/${P}/locations/global`,
        quotaPreferenceId: 'starred',
        quotaPreference: {
          service: 'run.googleapis.com',
          quotaId: L4,
          dimensions: { region: US },
          quotaConfig: { preferredValue: '3', annotations: { team: 'ml' } },
          justification: 'before',
        },
        ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
      });
      const whole = {
        name: made.name ?? '',
        service: 'run.googleapis.com',
        quotaId: L4,
        dimensions: { region: US },
        quotaConfig: { preferredValue: '3' },
      };
      const [replaced] = await raw.updateQuotaPreference({
        quotaPreference: whole,
        updateMask: { paths: ['*'] },
      });
      // Every field overwritten: the justification and annotations the request leaves out go.
      expect(replaced.justification).toBe('');
      expect(replaced.quotaConfig).toMatchObject({ preferredValue: '3', annotations: {} });
      // A full replacement holds the rules no mask holds: dimensions are immutable.
      expect(
        await rawCode(
          raw.updateQuotaPreference({
            quotaPreference: { ...whole, dimensions: { region: EU } },
            updateMask: { paths: ['*'] },
          }),
        ),
      ).toBe(status.INVALID_ARGUMENT);
    } finally {
      await raw.close();
      await own.stop();
    }
  });

  it('an update with allow_missing of a preference not found creates it, checked as a create; validate_only stores nothing', async () => {
    // UpdateQuotaPreferenceRequest.allow_missing: "If set to true, and the quota preference is not
    // found, a new one will be created. In this situation, update_mask is ignored."
    const own = await startEmulator({ fleet, speed: 'manual' });
    const raw = new CloudQuotasClient(clientConfig({ emulatorHost: own.host }).options);
    try {
      const name = `projects/${P}/locations/global/quotaPreferences/made-by-update`;
      const quotaPreference = {
        name,
        service: 'run.googleapis.com',
        quotaId: L4,
        dimensions: { region: EU },
        quotaConfig: { preferredValue: '7' },
        contactEmail: 'ops@example.com',
      };
      const updateMask = { paths: ['justification'] };
      // Without it: NOT_FOUND, as before.
      expect(await rawCode(raw.updateQuotaPreference({ quotaPreference, updateMask }))).toBe(
        status.NOT_FOUND,
      );
      // validate_only: checked, nothing created, answered with the preference as it would be
      // (AIP-163, https://google.aip.dev/163: "the same response ... that it would have provided
      // if the request was actually executed"), without the etag only a stored change makes.
      const [wouldMake] = await raw.updateQuotaPreference({
        quotaPreference,
        updateMask,
        allowMissing: true,
        validateOnly: true,
      });
      expect(wouldMake).toMatchObject({
        name,
        reconciling: true,
        etag: '',
        quotaConfig: { preferredValue: '7' },
      });
      expect(quotaPreferences(own.model)).toEqual([]);
      // Checked as a create: an increase without a contact email is refused.
      expect(
        await rawCode(
          raw.updateQuotaPreference({
            quotaPreference: { ...quotaPreference, contactEmail: '' },
            allowMissing: true,
          }),
        ),
      ).toBe(status.INVALID_ARGUMENT);
      const [made] = await raw.updateQuotaPreference({
        quotaPreference,
        updateMask,
        allowMissing: true,
      });
      expect(made).toMatchObject({ name, reconciling: true, quotaConfig: { preferredValue: '7' } });
      expect(quotaPreferences(own.model).map((p) => p.name)).toEqual([name]);
      // One preference per quota and dimensions, whichever call makes the second.
      expect(
        await rawCode(
          raw.updateQuotaPreference({
            quotaPreference: { ...quotaPreference, name: `${name}-twin` },
            allowMissing: true,
          }),
        ),
      ).toBe(status.ALREADY_EXISTS);
      // Found: an ordinary update, allow_missing or not.
      const [raised] = await raw.updateQuotaPreference({
        quotaPreference: { ...quotaPreference, quotaConfig: { preferredValue: '8' } },
        updateMask: { paths: ['quota_config.preferred_value'] },
        allowMissing: true,
      });
      expect(raised.quotaConfig?.preferredValue).toBe('8');
      expect(quotaPreferences(own.model)).toHaveLength(1);
      // UpdateQuotaPreferenceRequest.validate_only: "If set to true, validate the request, but do
      // not actually update" (google/api/cloudquotas/v1/cloudquotas.proto): found, nothing changes.
      const [wouldRaise] = await raw.updateQuotaPreference({
        quotaPreference: { ...quotaPreference, quotaConfig: { preferredValue: '9' } },
        updateMask: { paths: ['quota_config.preferred_value'] },
        validateOnly: true,
      });
      expect(wouldRaise).toMatchObject({ name, etag: '', quotaConfig: { preferredValue: '9' } });
      expect(quotaPreferences(own.model).map((p) => p.preferredValue)).toEqual([8]);
      // A decrease would apply at once: answered granted, the quota left as it is.
      const euQuota = () =>
        own.model.quotaFor({
          project: P,
          region: EU,
          accelerator: 'nvidia-l4',
          zonalRedundancy: true,
        });
      expect(euQuota()).toBe(4);
      const [wouldCut] = await raw.updateQuotaPreference({
        quotaPreference: { ...quotaPreference, quotaConfig: { preferredValue: '2' } },
        updateMask: { paths: ['quota_config.preferred_value'] },
        validateOnly: true,
        ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
      });
      expect(wouldCut).toMatchObject({
        reconciling: false,
        quotaConfig: { preferredValue: '2', grantedValue: { value: '2' } },
      });
      expect(euQuota()).toBe(4);
      expect(quotaPreferences(own.model).map((p) => p.preferredValue)).toEqual([8]);
    } finally {
      await raw.close();
      await own.stop();
    }
  });

  it('the adapter refuses malformed input before any call, and names missing preferences', async () => {
    await expect(file({ id: '../etc' })).rejects.toBeInstanceOf(InputError);
    await expect(file({ region: 'us central1' })).rejects.toBeInstanceOf(InputError);
    await expect(file({ preferredValue: -1 })).rejects.toBeInstanceOf(InputError);
    await expect(file({ quotaId: 'a/b' })).rejects.toBeInstanceOf(InputError);
    await expect(prefs.getPreference('projects/x')).rejects.toBeInstanceOf(InputError);
    await expect(prefs.listPreferences('bad project')).rejects.toBeInstanceOf(InputError);
    await expect(
      prefs.getPreference(`projects/${P}/locations/global/quotaPreferences/none`),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      file({ id: 'gpu-governor-x', contactEmail: '', region: US, preferredValue: 50 }),
    ).rejects.toBeInstanceOf(UpstreamError);
  });

  it('lists every page', async () => {
    const small = await startEmulator({ fleet, speed: 'manual', pageSize: 1 });
    const a = createQuotaPreferenceAdapter({ emulatorHost: small.host });
    try {
      await a.createPreference({
        project: P,
        id: 'a1',
        quotaId: L4,
        region: US,
        preferredValue: 5,
        justification: '',
        contactEmail: 'o@example.com',
      });
      await a.createPreference({
        project: P,
        id: 'a2',
        quotaId: L4,
        region: EU,
        preferredValue: 5,
        justification: '',
        contactEmail: 'o@example.com',
      });
      await a.createPreference({
        project: P,
        id: 'a3',
        quotaId: L4_NZ,
        region: US,
        preferredValue: 3,
        justification: '',
        contactEmail: 'o@example.com',
      });
      expect((await a.listPreferences(P)).map((p) => p.name.split('/').pop())).toEqual([
        'a1',
        'a2',
        'a3',
      ]);
      // Pages shorter than asked, even empty, before the end (https://google.aip.dev/158).
      small.setFaults({ seed: 1, paging: { shortRate: 0.9 } });
      expect((await a.listPreferences(P)).map((p) => p.name.split('/').pop())).toEqual([
        'a1',
        'a2',
        'a3',
      ]);
      expect(small.faults().injected['short-page']).toBeGreaterThan(0);
    } finally {
      await a.close();
      await small.stop();
    }
  });

  it('a listing Google answers with an unreachable location is incomplete: an error, never a shorter list', async () => {
    // ListQuotaPreferencesResponse.unreachable: "Locations that could not be reached"
    // (cloudquotas.proto). The preferences of that location are missing from the answer, so a
    // listing taken as complete would show no pending request where one is.
    const small = await startEmulator({ fleet, speed: 'manual', pageSize: 1 });
    const a = createQuotaPreferenceAdapter({ emulatorHost: small.host });
    try {
      for (const [id, region] of [
        ['u1', US],
        ['u2', EU],
      ] as const)
        await a.createPreference({
          project: P,
          id,
          quotaId: L4,
          region,
          preferredValue: 5,
          justification: '',
          contactEmail: 'o@example.com',
        });
      small.setFaults({ seed: 3, paging: { unreachableRate: 1 } });
      const listing = a.listPreferences(P);
      await expect(listing).rejects.toBeInstanceOf(UpstreamError);
      await expect(listing).rejects.toThrow(/could not reach global.*incomplete/);
      expect(small.faults().injected['unreachable']).toBeGreaterThan(0);
      small.setFaults({});
      expect((await a.listPreferences(P)).map((p) => p.name.split('/').pop())).toEqual([
        'u1',
        'u2',
      ]);
    } finally {
      await a.close();
      await small.stop();
    }
  });
});

describe('listing: empty pages that keep offering another', () => {
  it('is refused at the 100th in a row, as every other listing refuses it', async () => {
    // Google may answer a page with no results and a token all the same (AIP-158): 99 in a row are
    // read through, the 100th that offers another ends the listing rather than read on.
    const small = await startEmulator({ fleet, speed: 'manual', pageSize: 1 });
    const a = createQuotaPreferenceAdapter({ emulatorHost: small.host });
    try {
      await a.createPreference({
        project: P,
        id: 'e1',
        quotaId: L4,
        region: US,
        preferredValue: 5,
        justification: '',
        contactEmail: 'o@example.com',
      });
      small.setFaults({ seed: 1, paging: { emptyRun: 99 } });
      expect((await a.listPreferences(P)).map((p) => p.name.split('/').pop())).toEqual(['e1']);
      small.setFaults({ seed: 1, paging: { emptyRun: 100 } });
      const listing = a.listPreferences(P);
      await expect(listing).rejects.toBeInstanceOf(UpstreamError);
      await expect(listing).rejects.toThrow(
        /the listing did not end \(100 pages in a row held nothing, and another was offered\)/,
      );
    } finally {
      await a.close();
      await small.stop();
    }
  });
});

describe('listing: a page token that comes back', () => {
  it('is refused at once, as every other listing refuses it, rather than read up to the page bound', async () => {
    // A server that answers the first page again whatever token it is sent, offering the same
    // next token each time: the listing would never end. The real client still goes to the
    // emulator; only the token it offers is replaced.
    const a = createQuotaPreferenceAdapter({ emulatorHost: emulator.host });
    const real = CloudQuotasClient.prototype.listQuotaPreferences as (
      request: unknown,
      options: unknown,
    ) => Promise<unknown[]>;
    let calls = 0;
    const spy = vi
      .spyOn(CloudQuotasClient.prototype, 'listQuotaPreferences')
      .mockImplementation(async function (this: CloudQuotasClient, request, options) {
        calls += 1;
        const [items, next, response] = await real.call(
          this,
          { ...request, pageToken: '' },
          options,
        );
        return [items, next, { ...(response as object), nextPageToken: 'again' }] as never;
      });
    try {
      const listing = a.listPreferences(P);
      await expect(listing).rejects.toBeInstanceOf(UpstreamError);
      await expect(listing).rejects.toThrow(/page token ".+" came back twice/);
      expect(calls).toBe(2);
    } finally {
      spy.mockRestore();
      await a.close();
    }
  });
});

describe('quota preferences: unlimited, safety checks and order, as Google documents them', () => {
  // resources.proto: QuotaConfig.preferred_value (-1 is unlimited), QuotaSafetyCheck;
  // cloudquotas.proto: ListQuotaPreferencesRequest.order_by ("ordered by create time").
  const Q = 'qp-safety';
  let emu: RunningEmulator;
  let raw: CloudQuotasClient;
  const parent = `projects/${Q}/locations/global`;
  const base = {
    service: 'run.googleapis.com',
    quotaId: L4,
    dimensions: { region: US },
    contactEmail: '',
  };
  const create = (id: string, value: string, req: object = {}, over: object = {}) =>
    raw.createQuotaPreference({
      parent,
      quotaPreferenceId: id,
      quotaPreference: { ...base, quotaConfig: { preferredValue: value }, ...over },
      ...req,
    });

  beforeAll(async () => {
    emu = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 0,
        startupSeconds: 0,
        projects: [
          {
            id: Q,
            pools: [
              { region: US, quota: 10 },
              { region: EU, quota: 4 },
              { region: US, zonalRedundancy: false, quota: 8 },
            ],
            services: [{ name: 'busy', region: US, gpu: {}, maxInstances: 3, demand: 3 }],
          },
        ],
      },
      speed: 'manual',
    });
    emu.advance(60_000);
    raw = new CloudQuotasClient(clientConfig({ emulatorHost: emu.host }).options);
  });
  afterAll(async () => {
    await raw.close();
    await emu.stop();
  });

  it('-1 (unlimited) is an increase: it needs a contact email and waits, the quota unchanged', async () => {
    expect(await rawCode(create('unlimited', '-1'))).toBe(status.INVALID_ARGUMENT);
    const [p] = await create('unlimited', '-1', {}, { contactEmail: 'ops@example.com' });
    expect(p.reconciling).toBe(true);
    expect(p.quotaConfig?.traceId).not.toBe('');
    const quotas = createQuotaAdapter({ emulatorHost: emu.host });
    try {
      expect(
        await quotas.gpuQuota({
          project: Q,
          region: US,
          accelerator: 'nvidia-l4',
          zonalRedundancy: true,
        }),
      ).toBe(10);
    } finally {
      await quotas.close();
    }
    // Listed in creation order, not by name.
    await create('a-later', '4', {}, { dimensions: { region: EU } });
    const [list] = await raw.listQuotaPreferences({ parent });
    expect(list.map((x) => x.name?.split('/').pop())).toEqual(['unlimited', 'a-later']);
  });

  it('an order_by other than the default is not served in creation order as if it were', async () => {
    // ListQuotaPreferencesRequest.order_by: "By default, the results are ordered by create time.
    // Example orders: `quota_id`, `service, create_time`". The emulator lists in creation order
    // only: another order is UNIMPLEMENTED, never answered in the wrong order.
    // Newest first is another order too.
    for (const orderBy of ['quota_id', 'service, create_time', 'create_time desc'])
      expect(await rawCode(raw.listQuotaPreferences({ parent, orderBy })), orderBy).toBe(
        status.UNIMPLEMENTED,
      );
    const [byCreate] = await raw.listQuotaPreferences({ parent, orderBy: 'create_time' });
    const [plain] = await raw.listQuotaPreferences({ parent });
    expect(byCreate.map((x) => x.name)).toEqual(plain.map((x) => x.name));
  });

  it('a decrease of more than 10 percent, or below the GPUs in use, is refused unless that check is ignored', async () => {
    const [first] = await raw.listQuotaPreferences({ parent });
    const name = `${parent}/quotaPreferences/unlimited`;
    expect(first.some((x) => x.name === name)).toBe(true);
    const [current] = await raw.getQuotaPreference({ name });
    const update = (value: string, req: object = {}) =>
      raw.updateQuotaPreference({
        quotaPreference: { ...current, quotaConfig: { preferredValue: value } },
        updateMask: { paths: ['quota_config.preferred_value'] },
        ...req,
      });
    const tooFar = await update('5').catch((e: Error & { code?: number }) => e);
    expect((tooFar as { code?: number }).code).toBe(status.FAILED_PRECONDITION);
    expect(String((tooFar as Error).message)).toMatch(/QUOTA_DECREASE_PERCENTAGE_TOO_HIGH/);
    const below = await update('2', {
      ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
    }).catch((e: Error & { code?: number }) => e);
    expect((below as { code?: number }).code).toBe(status.FAILED_PRECONDITION);
    expect(String((below as Error).message)).toMatch(/QUOTA_DECREASE_BELOW_USAGE.*3 in use/);
    // Nothing changed by the refusals.
    expect(
      emu.model.quotaFor({
        project: Q,
        region: US,
        accelerator: 'nvidia-l4',
        zonalRedundancy: true,
      }),
    ).toBe(10);
    // 10 to 9 is 10 percent: allowed; and with the check ignored, further down to the usage.
    const [nine] = await update('9');
    expect(nine.quotaConfig?.grantedValue?.value).toBe('9');
    const [three] = await raw.updateQuotaPreference({
      quotaPreference: { ...nine, quotaConfig: { preferredValue: '3' } },
      updateMask: { paths: ['quota_config.preferred_value'] },
      ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH],
    });
    expect(three.quotaConfig?.grantedValue?.value).toBe('3');
    // A create is checked the same way: 8 to 7 without zonal redundancy is 12.5 percent.
    const nz = { quotaId: L4_NZ };
    expect(await rawCode(create('nz-down', '7', {}, nz))).toBe(status.FAILED_PRECONDITION);
    const [down] = await create('nz-down', '7', { ignoreSafetyChecks: [PERCENTAGE_TOO_HIGH] }, nz);
    expect(down.reconciling).toBe(false);
  });

  it('a create without an id gets one no other preference holds, whatever ids clients chose', async () => {
    // CreateQuotaPreferenceRequest.quota_preference_id: "must be unique under its parent. If
    // client does not set this field, the service will generate one" (cloudquotas.proto).
    const anon = (region: string) =>
      raw.createQuotaPreference({
        parent,
        quotaPreference: {
          ...base,
          dimensions: { region },
          quotaConfig: { preferredValue: '1' },
          contactEmail: 'ops@example.com',
        },
      });
    const [first] = await anon('asia-east1');
    const serial = Number(/\/pref-(\d+)$/.exec(first.name ?? '')?.[1]);
    expect(Number.isInteger(serial)).toBe(true);
    // A client takes the id the next generated one would have been.
    const taken = `pref-${serial + 2}`;
    await create(taken, '1', {}, { dimensions: { region: 'asia-east2' }, contactEmail: 'a@b.co' });
    const [second] = await anon('asia-east3');
    expect(second.name).not.toBe(`${parent}/quotaPreferences/${taken}`);
    expect(second.dimensions).toEqual({ region: 'asia-east3' });
    const [list] = await raw.listQuotaPreferences({ parent });
    expect(new Set(list.map((x) => x.name)).size).toBe(list.length);
  });
});

describe('listing: other quotas are left out, values no GPU count can be are named, never fatal', () => {
  // QuotaConfig.preferred_value: "Must be greater than or equal to -1. If set to -1, it means the
  // value is "unlimited""; granted_value is an Int64Value (resources.proto, and
  // https://cloud.google.com/docs/quotas/reference/rest/v1/projects.locations.quotaPreferences).
  const L = 'qp-listing';
  let emu: RunningEmulator;
  let a: QuotaPreferenceAdapter;
  const parent = `projects/${L}/locations/global`;

  beforeAll(async () => {
    emu = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 0,
        projects: [
          {
            id: L,
            pools: [
              { region: US, quota: 4 },
              { region: EU, quota: 4 },
            ],
            services: [],
          },
        ],
      },
      speed: 'manual',
    });
    a = createQuotaPreferenceAdapter({ emulatorHost: emu.host });
  });
  afterAll(async () => {
    await a.close();
    await emu.stop();
  });

  it("another quota's -1 or 2^53 + 1 never makes the list fail; the governor's own quota's is named, not read", async () => {
    // Someone's preferences for Cloud Run quotas the governor never acts on.
    emu.seedQuotaPreference({
      name: `${parent}/quotaPreferences/cpu-unlimited`,
      quotaId: 'CpuAllocPerProjectRegion',
      region: US,
      preferredValue: '-1',
      grantedValue: '-1',
    });
    emu.seedQuotaPreference({
      name: `${parent}/quotaPreferences/memory-huge`,
      quotaId: 'MemAllocPerProjectRegion',
      preferredValue: '9007199254740993',
      grantedValue: '9007199254740993',
    });
    // Unlimited granted on the governor's own GPU quota in us-central1.
    emu.seedQuotaPreference({
      name: `${parent}/quotaPreferences/l4-unlimited`,
      quotaId: L4,
      region: US,
      preferredValue: '-1',
      grantedValue: '-1',
    });
    const ours = await a.createPreference({
      project: L,
      id: 'gpu-governor-eu',
      quotaId: L4,
      region: EU,
      preferredValue: 6,
      justification: '',
      contactEmail: 'ops@example.com',
    });
    const listed = await a.listPreferences(L);
    expect(listed.map((p) => p.name.split('/').pop())).toEqual(['l4-unlimited', 'gpu-governor-eu']);
    expect(listed[1]).toEqual(ours);
    const unlimited = listed[0];
    expect(unlimited).toMatchObject({ quotaId: L4, region: US });
    expect(unlimited?.unreadable).toMatch(
      new RegExp(
        `quota preference ${parent}/quotaPreferences/l4-unlimited, granted value: -1 is not a GPU count`,
      ),
    );
    // Read one by one, the governor's own quota's still fails, with the same reason.
    await expect(a.getPreference(`${parent}/quotaPreferences/l4-unlimited`)).rejects.toThrow(
      /granted value: -1 is not a GPU count/,
    );
  });
  it('an update is never sent without the etag read: refused before any call, the preference unchanged', async () => {
    // QuotaPreference.etag is optional: "If an etag is provided on update and does not match
    // ... ABORTED"; without one Google makes no check and the update overwrites any change.
    const name = `${parent}/quotaPreferences/no-etag`;
    emu.seedQuotaPreference({
      name,
      quotaId: L4_NZ,
      region: US,
      preferredValue: '5',
      grantedValue: '4',
      etag: false,
    });
    const read = await a.getPreference(name);
    expect(read.etag).toBe('');
    const updates = () => emu.calls().filter((c) => c.method.endsWith('/UpdateQuotaPreference'));
    const before = updates().length;
    for (const etag of [read.etag, '  '])
      await expect(
        a.updatePreference({
          name,
          etag,
          preferredValue: 8,
          justification: 'x',
          contactEmail: 'ops@example.com',
        }),
      ).rejects.toThrow(/no etag: an update without the etag read would overwrite/);
    expect(updates()).toHaveLength(before);
    expect((await a.getPreference(name)).preferredValue).toBe(5);
  });
  it("another service's preference is left out, whatever its quota id", async () => {
    const name = `${parent}/quotaPreferences/compute-l4`;
    emu.seedQuotaPreference({
      name,
      service: 'compute.googleapis.com',
      quotaId: L4,
      region: US,
      preferredValue: '3',
    });
    expect((await a.listPreferences(L)).map((p) => p.name)).not.toContain(name);
  });
  it('an update to a value that is no GPU count (-1 is "unlimited") is refused before any call', async () => {
    const before = emu.calls().length;
    for (const preferredValue of [-1, 1.5])
      await expect(
        a.updatePreference({
          name: `${parent}/quotaPreferences/no-etag`,
          etag: 'e',
          preferredValue,
          justification: '',
          contactEmail: 'ops@example.com',
        }),
      ).rejects.toBeInstanceOf(InputError);
    expect(emu.calls()).toHaveLength(before);
  });

  it('a preference name with "..", extra segments or oversized is refused before any call', async () => {
    const before = emu.calls().length;
    for (const name of [
      `${parent}/quotaPreferences/..`,
      `${parent}/quotaPreferences/a/b`,
      `projects/../locations/global/quotaPreferences/a`,
      `${parent}/quotaPreferences/${'a'.repeat(400)}`,
    ]) {
      await expect(a.getPreference(name), name).rejects.toBeInstanceOf(InputError);
      await expect(
        a.updatePreference({
          name,
          etag: 'e',
          preferredValue: 3,
          justification: '',
          contactEmail: 'ops@example.com',
        }),
        name,
      ).rejects.toThrow(/must look like|characters/);
    }
    expect(emu.calls()).toHaveLength(before);
  });
});

describe('listing: a preference named under another project', () => {
  it("is named as unreadable, never read as this project's", async () => {
    // Only a name of the project asked (or of a project number, which the caller confirms) is
    // this project's preference; the same answer under another project's name is not used.
    const a = createQuotaPreferenceAdapter({ emulatorHost: emulator.host });
    const real = CloudQuotasClient.prototype.listQuotaPreferences as (
      request: unknown,
      options: unknown,
    ) => Promise<unknown[]>;
    const spy = vi
      .spyOn(CloudQuotasClient.prototype, 'listQuotaPreferences')
      .mockImplementation(async function (this: CloudQuotasClient, request, options) {
        const [items, next, response] = await real.call(this, request, options);
        const moved = (items as { name?: string }[]).map((p) => ({
          ...p,
          name: String(p.name).replace(`projects/${P}/`, 'projects/other-project/'),
        }));
        return [moved, next, response] as never;
      });
    try {
      const listed = await a.listPreferences(P);
      expect(listed.length).toBeGreaterThan(0);
      for (const p of listed)
        expect(p).toMatchObject({
          unreadable: expect.stringMatching(/names a preference of project "other-project"/),
        });
    } finally {
      spy.mockRestore();
      await a.close();
    }
  });
});

describe('reading back: an answer that is another preference', () => {
  it('is refused, never judged as the preference asked for', async () => {
    // GetQuotaPreference names the preference it reads; an answer naming another one (another
    // id, or another project) would decide the tracked request on another preference's state.
    const a = createQuotaPreferenceAdapter({ emulatorHost: emulator.host });
    const [created] = await other.createQuotaPreference({
      parent: `projects/${P}/locations/global`,
      quotaPreferenceId: 'read-back-asked',
      quotaPreference: {
        service: 'run.googleapis.com',
        quotaId: L4_NZ,
        dimensions: { region: 'asia-east1' },
        quotaConfig: { preferredValue: '5' },
        contactEmail: 'o@example.com',
      },
    });
    const real = CloudQuotasClient.prototype.getQuotaPreference as (
      request: unknown,
      options: unknown,
    ) => Promise<unknown[]>;
    let rename = (name: string) => name;
    const spy = vi
      .spyOn(CloudQuotasClient.prototype, 'getQuotaPreference')
      .mockImplementation(async function (this: CloudQuotasClient, request, options) {
        const [p, ...rest] = await real.call(this, request, options);
        const name = String((p as { name?: string }).name);
        return [{ ...(p as object), name: rename(name) }, ...rest] as never;
      });
    try {
      for (const other of [
        (n: string) => n.replace('read-back-asked', 'someone-elses'),
        (n: string) => n.replace(`projects/${P}/`, 'projects/other-project/'),
      ]) {
        rename = other;
        const read = a.getPreference(String(created.name));
        await expect(read).rejects.toBeInstanceOf(UpstreamError);
        await expect(read).rejects.toThrow(/answered .*someone-elses|answered .*other-project/);
      }
      // The same preference named by project number, as Google names resources, is read.
      rename = (n) => n.replace(`projects/${P}/`, 'projects/123456/');
      expect(await a.getPreference(String(created.name))).toMatchObject({ preferredValue: 5 });
    } finally {
      spy.mockRestore();
      await a.close();
    }
  });
});

describe('filing: an answer Google gives with a value that is no GPU count', () => {
  it('is a filing whose outcome is unknown, never one refused: Google made it', async () => {
    // The write was made; only its answer cannot be read (a granted -1, "unlimited"). Taken as
    // refused, the run would withdraw the planned event of a request Google holds.
    const unlimited = (answer: unknown[]) => {
      const [p, ...rest] = answer;
      const config = (p as { quotaConfig?: object }).quotaConfig ?? {};
      return [
        { ...(p as object), quotaConfig: { ...config, grantedValue: { value: '-1' } } },
        ...rest,
      ] as never;
    };
    const realCreate = CloudQuotasClient.prototype.createQuotaPreference as (
      ...args: unknown[]
    ) => Promise<unknown[]>;
    const realUpdate = CloudQuotasClient.prototype.updateQuotaPreference as (
      ...args: unknown[]
    ) => Promise<unknown[]>;
    const create = vi
      .spyOn(CloudQuotasClient.prototype, 'createQuotaPreference')
      .mockImplementation(async function (this: CloudQuotasClient, ...args: unknown[]) {
        return unlimited(await realCreate.apply(this, args));
      });
    const update = vi
      .spyOn(CloudQuotasClient.prototype, 'updateQuotaPreference')
      .mockImplementation(async function (this: CloudQuotasClient, ...args: unknown[]) {
        return unlimited(await realUpdate.apply(this, args));
      });
    const name = `projects/${P}/locations/global/quotaPreferences/answer-unlimited`;
    try {
      const filed = file({ id: 'answer-unlimited', region: 'australia-southeast1' });
      await expect(filed).rejects.toBeInstanceOf(UnavailableError);
      await expect(filed).rejects.toThrow(/granted value/);
      const [made] = await other.getQuotaPreference({ name });
      expect(made.quotaConfig?.preferredValue).toBe('6');
      const raised = prefs.updatePreference({
        name,
        etag: String(made.etag),
        preferredValue: 7,
        justification: '',
        contactEmail: 'ops@example.com',
      });
      await expect(raised).rejects.toBeInstanceOf(UnavailableError);
      const [now] = await other.getQuotaPreference({ name });
      expect(now.quotaConfig?.preferredValue).toBe('7');
    } finally {
      create.mockRestore();
      update.mockRestore();
    }
  });
});

describe('what is sent again after a failure', () => {
  const F = 'qp-faults';
  let emu: RunningEmulator;
  let a: QuotaPreferenceAdapter;
  let fault: ((method: string) => RpcError | undefined) | undefined;
  const codes = (method: string) =>
    emu
      .calls()
      .filter((c) => c.method.endsWith(`/${method}`))
      .map((c) => c.code);
  const request = {
    project: F,
    id: 'gpu-governor-us',
    quotaId: L4,
    region: US,
    preferredValue: 6,
    justification: '',
    contactEmail: 'ops@example.com',
  };

  beforeAll(async () => {
    emu = await startEmulator({
      fleet: {
        start: '2026-11-27T12:00:00Z',
        warmupMinutes: 0,
        projects: [{ id: F, pools: [{ region: US, quota: 4 }], services: [] }],
      },
      speed: 'manual',
      faults: ({ method }) => fault?.(method.slice(method.lastIndexOf('/') + 1)),
    });
    a = createQuotaPreferenceAdapter({
      emulatorHost: emu.host,
      retry: { maxAttempts: 3, minBackoffMs: 10, maxBackoffMs: 40 },
    });
  });
  afterEach(() => {
    fault = undefined;
  });
  afterAll(async () => {
    await a.close();
    await emu.stop();
  });

  it('a create or an update that failed with UNAVAILABLE is sent once: it may have been made', async () => {
    const lost = (method: string) => (m: string) =>
      m === method ? new RpcError(status.UNAVAILABLE, 'connection reset') : undefined;
    fault = lost('CreateQuotaPreference');
    const create = await a.createPreference(request).then(
      () => 'filed',
      (e: unknown) => e,
    );
    expect(create).toBeInstanceOf(UnavailableError);
    expect((create as Error).message).toMatch(/; it may have been filed$/);
    expect(codes('CreateQuotaPreference')).toEqual(['UNAVAILABLE']);
    fault = undefined;
    const made = await a.createPreference(request);
    fault = lost('UpdateQuotaPreference');
    await expect(
      a.updatePreference({
        name: made.name,
        etag: made.etag,
        preferredValue: 7,
        justification: '',
        contactEmail: 'ops@example.com',
      }),
    ).rejects.toThrow(/; it may have been filed$/);
    expect(codes('UpdateQuotaPreference')).toEqual(['UNAVAILABLE']);
  });

  it('a create that timed out is sent once, and may have been filed', async () => {
    const before = codes('CreateQuotaPreference').length;
    fault = (m) =>
      m === 'CreateQuotaPreference'
        ? new RpcError(status.DEADLINE_EXCEEDED, 'deadline exceeded')
        : undefined;
    const create = await a.createPreference({ ...request, id: `${request.id}-late` }).then(
      () => 'filed',
      (e: unknown) => e,
    );
    expect(create).toBeInstanceOf(UnavailableError);
    expect((create as Error).message).toMatch(/; it may have been filed$/);
    expect(codes('CreateQuotaPreference').slice(before)).toEqual(['DEADLINE_EXCEEDED']);
  });

  it('a read refused with RESOURCE_EXHAUSTED is sent again after the delay it asks for', async () => {
    const name = `projects/${F}/locations/global/quotaPreferences/${request.id}`;
    let refusals = 1;
    fault = (m) =>
      m === 'GetQuotaPreference' && refusals-- > 0
        ? new RpcError(status.RESOURCE_EXHAUSTED, 'Quota exceeded: read requests per minute', 50)
        : undefined;
    await expect(a.getPreference(name)).resolves.toMatchObject({ name, preferredValue: 6 });
    expect(codes('GetQuotaPreference')).toEqual(['RESOURCE_EXHAUSTED', 'OK']);
  });
});
