import { writeBreaches, type WriteBreach } from '../core/invariants.js';
import { reserveOf } from '../core/pool.js';
import { MINUTE_MS, type FleetModel } from '../emulator/model.js';
import type { MaxInstancesUpdate } from '../ports/index.js';
import type { Accounting } from './accounting.js';
import { capOf, poolAt, svcId, type Member, type PoolInfo, type SimContext } from './context.js';

/**
 * The governor's writes in the simulator, each checked as it is made against the rules of docs/rules.md it
 * must keep (core/invariants.ts, which the emulator's invariant monitor uses too). The simulator
 * knows more than the emulator: the policy's floors and ceilings, so it checks rule 2 as well.
 */

interface WriteFacts {
  /** A policy rule governs the service. */
  managed: boolean;
  before: number;
  after: number;
  floor: number;
  ceiling: number;
  /** The pool's caps (GPUs) right after the write. */
  capsGpus: number;
  budgetGpus: number;
}

/** The rules (docs/rules.md) one write breaks, in words (empty: none). */
export function writeProblems(w: WriteFacts): string[] {
  return writeBreaches({
    managed: w.managed,
    before: w.before,
    after: w.after,
    bounds: { floor: w.floor, ceiling: w.ceiling },
    pool: { capsGpus: w.capsGpus, budgetGpus: w.budgetGpus },
  }).map((b) => describe(b, w));
}

function describe(b: WriteBreach, w: WriteFacts): string {
  switch (b.kind) {
    case 'unmanaged':
      return 'an unmanaged service was written (rule 3)';
    case 'out-of-bounds':
      return `written ${w.after}, outside floor ${b.floor} / ceiling ${b.ceiling} (rule 2)`;
    case 'over-quota':
      return `raised ${w.before} → ${w.after} leaving the pool's caps at ${b.capsGpus} GPUs, above the budget ${b.budgetGpus} (rule 1)`;
  }
}

/** Counts every write of one run and checks it against the pool as the model has it then. */
export class WriteChecker {
  /** Violations in words, the first 20, and how many in all. */
  readonly violations: string[] = [];
  count = 0;
  private readonly capBefore = new Map<string, number>();
  private readonly byId: Map<string, { pool: PoolInfo; member: Member }>;

  constructor(
    private readonly ctx: SimContext,
    private readonly model: FleetModel,
    private readonly acc: Accounting,
  ) {
    this.byId = new Map(
      ctx.pools.flatMap((p) => p.members.map((m) => [m.id, { pool: p, member: m }] as const)),
    );
  }

  /** Writes made through the ports must know the cap before them: remember it as observed. */
  observeCaps(): void {
    for (const p of this.ctx.pools)
      for (const m of p.members) this.capBefore.set(m.id, capOf(this.model, m));
  }

  /** One write, as the governor's ports make it. */
  check(update: MaxInstancesUpdate): void {
    const id = svcId(update);
    this.acc.wrote(id);
    const found = this.byId.get(id);
    if (!found) return;
    const { pool, member } = found;
    const { model, ctx } = this;
    const view = ctx.view;
    const at = model.now;
    const { quota, available } = poolAt(pool, Math.floor((at - ctx.startMs) / MINUTE_MS));
    const s = view.settings(member, at);
    const caps = pool.members.reduce((a, m) => a + capOf(model, m) * m.gpus, 0);
    const problems = writeProblems({
      managed: s.managed,
      before: this.capBefore.get(id) ?? update.maxInstances,
      after: update.maxInstances,
      floor: view.floor(member, s),
      ceiling: Math.min(s.max ?? Infinity, Math.floor(quota / member.gpus)),
      capsGpus: caps,
      budgetGpus: available - reserveOf(ctx.policy, pool.id),
    });
    for (const text of problems) {
      this.count += 1;
      if (this.violations.length < 20)
        this.violations.push(`${new Date(at).toISOString()} ${member.name}: ${text}`);
    }
    this.capBefore.set(id, update.maxInstances);
  }
}
