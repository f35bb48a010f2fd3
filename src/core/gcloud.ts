/**
 * The gcloud commands the governor suggests to a person. Each names the service's project and
 * region: copied as printed, a command without them updates a service of that name in gcloud's
 * default project and region (`--project`, a gcloud-wide flag:
 * https://cloud.google.com/sdk/gcloud/reference; `--max` and `--min` are the service-level
 * settings: https://cloud.google.com/sdk/gcloud/reference/run/services/update).
 */

/** The start of a gcloud command that updates the service. */
export function gcloudUpdate(s: { name: string; project: string; region: string }): string {
  return `gcloud run services update ${s.name} --project ${s.project} --region ${s.region}`;
}

/**
 * A gcloud command that sends all of the service's traffic to its latest revision, the one its
 * template describes (`--to-latest`,
 * https://cloud.google.com/sdk/gcloud/reference/run/services/update-traffic).
 */
export function gcloudToLatest(s: { name: string; project: string; region: string }): string {
  return `gcloud run services update-traffic ${s.name} --project ${s.project} --region ${s.region} --to-latest`;
}
