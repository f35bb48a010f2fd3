import { runInNewContext } from 'node:vm';
import { status } from '@grpc/grpc-js';
import { compareText } from '../core/pool.js';
import { answerOf, type EmulatorContext } from './context.js';
import { ancestry, projectNumber } from './hierarchy.js';
import { assetSearchResultType, camelToSnake, maskPathMaps } from './protos.js';
import {
  int,
  invalid,
  isMessage,
  listPaging,
  paginate,
  permissionDenied,
  RpcError,
  strings,
  text,
  type Handlers,
  type Message,
  shown,
} from './rpc.js';

/**
 * Cloud Asset Inventory v1 `SearchAllResources`, for the Cloud Run services and worker pools of
 * the fleet. What it models, from `google/cloud/asset/v1/asset_service.proto` and
 * https://cloud.google.com/asset-inventory/docs/reference/rest/v1/TopLevel/searchAllResources:
 * - `scope`: projects/{ID or NUMBER}, folders/{NUMBER} or organizations/{NUMBER}; anything else
 *   is INVALID_ARGUMENT. A scope the caller may not search (the fleet's
 *   `hierarchy.searchDenied`, or a project, folder or organisation the fleet does not have) is
 *   PERMISSION_DENIED, as Google answers without cloudasset.assets.searchAllResources on it.
 * - `asset_types`: RE2 expressions; one that matches no asset type is INVALID_ARGUMENT ("If the
 *   regular expression does not match any supported asset type"); one that names another Google
 *   service's types, which the emulator does not model, is UNIMPLEMENTED. One with syntax RE2
 *   does not have (lookaround, backreferences) is INVALID_ARGUMENT, as one that does not compile
 *   (Google does not say which error: failing is the safe side); one with RE2 syntax JavaScript
 *   reads otherwise is UNIMPLEMENTED (syntaxGap).
 * - `page_size`: zero or negative picks the default; above 500 is capped at 500 (not refused).
 * - `page_token`: valid only with the same other parameters ("The values of all other method
 *   parameters, must be identical to those in the previous call"), `page_size` included, else
 *   INVALID_ARGUMENT (Google does not say which error: failing is the safe side).
 * - `query`, `order_by`, `read_mask`: the emulator evaluates none of them (read_mask would change
 *   which fields a result carries, order_by their order) and answers UNIMPLEMENTED for any that is
 *   set, rather than ignore it and answer what Google would not; but an `order_by` field that is
 *   not sortable and a `read_mask` path that is no field of a result are INVALID_ARGUMENT, as
 *   Google refuses them ({@link checkOrderBy}, {@link checkReadMask}).
 */

const KNOWN_TYPES = ['run.googleapis.com/Service', 'run.googleapis.com/WorkerPool'];
const SCOPE = /^(projects\/[^/]+|folders\/[1-9]\d{0,24}|organizations\/[1-9]\d{0,24})$/;
const MAX_PAGE = 500;

/**
 * How long one `asset_types` pattern may take to match, in ms. Google matches them with RE2, in
 * linear time (https://github.com/google/re2/wiki/Syntax); JavaScript's RegExp backtracks, so
 * `(.+)+x` against "run.googleapis.com/Service" took 7 s and `(.*)*(.*)*x` three minutes, every
 * RPC of the emulator waiting. A pattern that runs out of time is not refused (Google would
 * answer it) but not served either: UNIMPLEMENTED.
 */
const PATTERN_BUDGET_MS = 250;

/**
 * The known types `re` matches whole, or UNIMPLEMENTED past {@link PATTERN_BUDGET_MS}. A pattern
 * with no quantifier (`*`, `+`, `?`, `{`) cannot backtrack past its own length for each position
 * of a type's name, so it is matched at once, outside the timed sandbox: the sandbox's budget is
 * wall-clock time, which a loaded machine can spend on a pattern as plain as
 * "run.googleapis.com/WorkerPool" (the governor's own).
 */
function typesMatching(re: RegExp, pattern: string): string[] {
  if (!/[*+?{]/.test(pattern)) return KNOWN_TYPES.filter((t) => re.test(t));
  try {
    return runInNewContext(
      'types.filter((t) => re.test(t))',
      { types: KNOWN_TYPES, re },
      { timeout: PATTERN_BUDGET_MS },
    ) as string[];
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw error;
    throw new RpcError(
      status.UNIMPLEMENTED,
      `asset_types: "${pattern.slice(0, 100)}" did not match within ${PATTERN_BUDGET_MS} ms: the emulator's regular expressions backtrack where Google's RE2 runs in linear time; use a simpler pattern`,
    );
  }
}

/**
 * Where JavaScript's syntax and RE2's part, outside character classes: `unsupported` names what
 * RE2 has not (lookaround, backreferences: https://github.com/google/re2/wiki/Syntax,
 * https://cloud.google.com/load-balancing/docs/re2-support), which JavaScript would evaluate and
 * Google refuse; `re2Only` what RE2 has and JavaScript reads otherwise or not at all (flag groups,
 * `(?P<name>`, `\A`, `\z`, `\C`, `\Q…\E`, `\pN`, `[[:alpha:]]`).
 */
const LOOKAROUND = /(=|!|<=|<!)/y;
const RE2_GROUP = /(P<|P=|P>|[imsU-]{1,8}[):])/y;

function syntaxGap(pattern: string): { unsupported: string | null; re2Only: string | null } {
  let re2Only: string | null = null;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const next = pattern[i + 1] ?? '';
    if (c === '\\') {
      // A lone digit is a backreference; followed by octal digits it is RE2's octal escape.
      if (/[1-9]/.test(next) && !/[0-7]/.test(pattern[i + 2] ?? ''))
        return { unsupported: `\\${next} (a backreference)`, re2Only };
      if (next === 'k' && pattern[i + 2] === '<')
        return { unsupported: '\\k<…> (a backreference)', re2Only };
      if ('ACzQEpP'.includes(next) && next !== '') re2Only ??= `\\${next}`;
      i++;
    } else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      for (; j < pattern.length && pattern[j] !== ']'; j++) {
        if (pattern[j] === '\\') j++;
        else if (pattern[j] === '[' && pattern[j + 1] === ':') re2Only ??= '[:class:]';
      }
      i = j;
    } else if (c === '(' && next === '?') {
      // Sticky at the group's syntax: the pattern is not copied at each group.
      LOOKAROUND.lastIndex = i + 2;
      const look = LOOKAROUND.exec(pattern);
      if (look) return { unsupported: `(?${look[1]}…) (a lookaround)`, re2Only };
      RE2_GROUP.lastIndex = i + 2;
      if (RE2_GROUP.test(pattern)) re2Only ??= `(?${pattern.slice(i + 2, i + 4)}`;
    }
  }
  return { unsupported: null, re2Only };
}

function typesOf(patterns: string[]): string[] {
  if (patterns.length === 0) return KNOWN_TYPES;
  const out = new Set<string>();
  for (const p of patterns) {
    const gap = syntaxGap(p);
    if (gap.unsupported !== null)
      throw invalid(
        `asset_types: "${p.slice(0, 100)}" uses ${gap.unsupported}, which RE2 does not support`,
      );
    if (gap.re2Only !== null)
      throw new RpcError(
        status.UNIMPLEMENTED,
        `asset_types: "${p.slice(0, 100)}" uses RE2's ${gap.re2Only}, which the emulator's regular expressions do not evaluate as RE2 does; use a simpler pattern`,
      );
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${p})$`);
    } catch {
      throw invalid(`asset_types: "${p.slice(0, 100)}" is not a valid regular expression`);
    }
    const matched = typesMatching(re, p);
    // Google searches every supported asset type (compute.googleapis.com/Instance among them:
    // https://cloud.google.com/asset-inventory/docs/supported-asset-types); the emulator models
    // only Cloud Run's. A pattern that names a Google service may match one of those: not served
    // here (UNIMPLEMENTED), rather than refused as Google would not. Any other matches nothing.
    if (matched.length === 0 && p.includes('googleapis.com'))
      throw new RpcError(
        status.UNIMPLEMENTED,
        `asset_types: "${p.slice(0, 100)}": the emulator models only ${KNOWN_TYPES.join(' and ')}`,
      );
    if (matched.length === 0)
      throw invalid(`asset_types: "${p.slice(0, 100)}" does not match any supported asset type`);
    for (const t of matched) out.add(t);
  }
  return [...out];
}

/**
 * SearchAllResourcesRequest.order_by (asset_service.proto): "Only the following fields in the
 * response are sortable", each optionally followed by " DESC". A term naming another field is
 * INVALID_ARGUMENT; the fields are named as the reference lists them (camelCase), and their
 * snake_case spelling is not refused (Google does not say it is).
 */
const SORTABLE = [
  'name',
  'assetType',
  'project',
  'displayName',
  'description',
  'location',
  'createTime',
  'updateTime',
  'state',
  'parentFullResourceName',
  'parentAssetType',
];

function checkOrderBy(orderBy: string): void {
  if (orderBy.trim() === '') return;
  for (const term of orderBy.split(',')) {
    const fieldName = term.trim().split(/\s+/)[0] ?? '';
    if (!SORTABLE.some((f) => f === fieldName || camelToSnake(f) === fieldName))
      throw invalid(
        `order_by: "${shown(fieldName)}" is not a sortable field (sortable: ${SORTABLE.join(', ')})`,
      );
  }
}

/**
 * SearchAllResourcesRequest.read_mask (asset_service.proto): fields of ResourceSearchResult, or
 * "*" for all of them; "Any invalid field path will trigger INVALID_ARGUMENT error". A path is
 * valid as google/protobuf/field_mask.proto defines it (maskPathMaps), in snake_case or in the
 * camelCase of the reference's examples ("name,versionedResources").
 */
function checkReadMask(paths: readonly string[]): void {
  for (const path of paths) {
    if (path === '*') continue;
    if (!maskPathMaps(assetSearchResultType(), path.split('.').map(camelToSnake)))
      throw invalid(
        `read_mask: "${shown(path)}" is not a field path of ResourceSearchResult (or "*")`,
      );
  }
}

export function assetHandlers(ctx: EmulatorContext): Handlers {
  return {
    SearchAllResources: (request) => {
      const scope = text(request, 'scope');
      if (!SCOPE.test(scope)) {
        throw invalid(
          `scope must be projects/{PROJECT}, folders/{FOLDER_NUMBER} or organizations/{ORGANIZATION_NUMBER}, got "${shown(scope)}"`,
        );
      }
      if (text(request, 'query') !== '')
        throw new RpcError(status.UNIMPLEMENTED, 'the emulator does not evaluate search queries');
      const orderBy = text(request, 'order_by');
      checkOrderBy(orderBy);
      if (orderBy !== '')
        throw new RpcError(status.UNIMPLEMENTED, 'the emulator does not sort by order_by');
      const mask = request['read_mask'];
      const paths = isMessage(mask) ? strings(mask, 'paths') : [];
      checkReadMask(paths);
      if (paths.length > 0)
        throw new RpcError(status.UNIMPLEMENTED, 'the emulator does not apply a read_mask');
      const types = typesOf(strings(request, 'asset_types'));
      const h = ctx.model.fleet.hierarchy;
      // A project is searched by id or number; one outside the fleet is one the caller holds no
      // permission on, refused before anything is looked up (AIP-211), as a folder or an
      // organisation outside it is, never answered with an empty list.
      const known = scope.startsWith('projects/')
        ? ctx.model.fleet.projects.some(
            (p) => scope === `projects/${p.id}` || scope === `projects/${projectNumber(p.id)}`,
          )
        : h !== undefined &&
          (scope === `organizations/${h.organization}` ||
            h.folders.some((f) => `folders/${f.id}` === scope));
      if (!known || h?.searchDenied.includes(scope))
        throw permissionDenied('cloudasset.assets.searchAllResources', scope);
      const fleetAnswer = (): Message => {
        const results: Message[] = [];
        for (const project of ctx.model.fleet.projects) {
          const up = h ? ancestry(h, project.id) : { folders: [], organization: '' };
          const number = projectNumber(project.id);
          const inScope =
            scope === `projects/${project.id}` ||
            scope === `projects/${number}` ||
            scope === up.organization ||
            up.folders.includes(scope);
          if (!inScope) continue;
          const common = {
            project: `projects/${number}`,
            folders: up.folders,
            organization: up.organization,
            parent_full_resource_name: `//cloudresourcemanager.googleapis.com/projects/${project.id}`,
            parent_asset_type: 'cloudresourcemanager.googleapis.com/Project',
          };
          if (types.includes('run.googleapis.com/Service')) {
            // The services the model holds now, as ListServices answers them: one another
            // writer created (POST /create) is found, one it deleted (POST /delete) is not. Google
            // indexes with a delay ("a volatile window during which running the same query may
            // get different results", ListAssetsRequest in asset_service.proto), never for good.
            for (const s of ctx.model.listServices(project.id)) {
              results.push({
                name: `//run.googleapis.com/projects/${project.id}/locations/${s.region}/services/${s.name}`,
                asset_type: 'run.googleapis.com/Service',
                display_name: s.name,
                location: s.region,
                labels: s.labels,
                ...common,
              });
            }
          }
          if (types.includes('run.googleapis.com/WorkerPool')) {
            for (const w of project.workerPools) {
              results.push({
                name: `//run.googleapis.com/projects/${project.id}/locations/${w.region}/workerPools/${w.name}`,
                asset_type: 'run.googleapis.com/WorkerPool',
                display_name: w.name,
                location: w.region,
                labels: w.labels,
                ...common,
              });
            }
          }
        }
        results.sort((a, b) => compareText(String(a.name), String(b.name)));
        const pageSize = Math.max(0, int(request, 'page_size'));
        // "The values of all other method parameters, must be identical to those in the previous
        // call" (page_token): the patterns as asked, not the types they match.
        const asked = strings(request, 'asset_types');
        const { page, nextPageToken } = paginate(results, {
          ...listPaging(request, ctx, ['SearchAllResources', scope, asked, pageSize], {
            maxPageSize: MAX_PAGE,
          }),
          pageSize,
        });
        return { results: page, next_page_token: nextPageToken };
      };
      return answerOf(ctx, 'SearchAllResources', request, fleetAnswer);
    },
  };
}
