import { hostname } from 'node:os';

/**
 * The id a governor stamps on every service it writes (ANNOTATIONS.writer). It must be stable
 * across the runs of one governor (its own stamp never blocks it) and differ between governors:
 * `GOVERNOR_ID` when set; in a Cloud Function, its Cloud Run service (`K_SERVICE`, which the
 * functions runtime sets); elsewhere the user and the host (`cli:user@host`).
 */
export function writerIdFrom(env: NodeJS.ProcessEnv = process.env): string {
  const set = env.GOVERNOR_ID?.trim();
  if (set) return set;
  if (env.K_SERVICE) return `function:${env.K_SERVICE}`;
  return `cli:${env.USER ?? env.USERNAME ?? 'user'}@${hostname()}`;
}
