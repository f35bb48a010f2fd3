import { describe, expect, it } from 'vitest';

import { namedUnder } from '../../src/adapters/resource-names.js';

const US = 'us-central1';
const one = /^[^/]+$/;

describe('namedUnder', () => {
  it('takes a name under the project (by id or number), region and collection asked', () => {
    expect(namedUnder(`projects/p1/locations/${US}/services/web`, 'p1', US, 'services/', one)).toBe(
      true,
    );
    expect(
      namedUnder(`projects/123456/locations/${US}/services/web`, 'p1', US, 'services/', one),
    ).toBe(true);
  });

  it("refuses another project's, region's or collection's name", () => {
    for (const name of [
      `projects/p2/locations/${US}/services/web`,
      `projects/p1/locations/europe-west4/services/web`,
      `projects/p1/locations/${US}/workerPools/web`,
      `projects/p1/locations/${US}/services/web/revisions/r1`,
      `projects/p1/locations/${US}1/services/web`,
    ])
      expect(namedUnder(name, 'p1', US, 'services/', one), name).toBe(false);
  });

  it('reads the region and collection where they stand, not further down the name', () => {
    // The asked region's path later in the name does not make another region's resource this one's.
    const smuggled = `projects/p1/locations/europe-west4/services/x/locations/${US}/services/web`;
    expect(namedUnder(smuggled, 'p1', US, 'services/', one)).toBe(false);
    expect(
      namedUnder(`x/projects/p1/locations/${US}/services/web`, 'p1', US, 'services/', one),
    ).toBe(false);
  });
});
