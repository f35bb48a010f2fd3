variable "project_id" {
  type        = string
  description = "The host project: where the functions, the work topic, the state store (Firestore) and the alerts live."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6 to 30 lowercase letters, digits and hyphens), not a project number or display name."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions and the scheduler job."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "name" {
  type        = string
  description = "Name of the deployment (functions, accounts, topics)."
  default     = "gpu-governor-org"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,20}[a-z0-9]$", var.name))
    error_message = "name must be 6 to 22 characters: lower-case letters, digits and \"-\", starting with a letter."
  }
}

variable "organization_id" {
  type        = string
  description = "The organisation number. The custom role is created there (custom roles exist at organisation or project level only, never at folder level: https://cloud.google.com/iam/docs/roles-overview#custom)."

  validation {
    condition     = can(regex("^[1-9][0-9]{0,24}$", var.organization_id))
    error_message = "organization_id must be the organisation number, such as \"123456789012\"."
  }
}

variable "folder_ids" {
  type        = list(string)
  description = "Folder numbers to govern. Empty: the whole organisation. The role is granted on each folder (or on the organisation), and the policy's discovery searches the same scopes."
  default     = []

  validation {
    condition     = alltrue([for f in var.folder_ids : can(regex("^[1-9][0-9]{0,24}$", f))])
    error_message = "folder_ids must be folder numbers, such as \"1234567\"."
  }

  # The policy's discovery.folders takes at most 100 (src/core/discovery.ts): more, and every
  # dispatch and unit would fail on the policy the module wrote.
  validation {
    condition     = length(var.folder_ids) <= 100
    error_message = "folder_ids must name at most 100 folders (the policy's discovery.folders takes no more): govern a parent folder, or the whole organisation, instead."
  }
}

variable "policy" {
  type        = any
  description = "The governor's policy as an object (schema/policy.schema.json; from a file: yamldecode(file(\"policy.yaml\"))), usually without projects: any it lists are governed whatever discovery finds, and each is granted the custom role. The module sets discovery (organization_id or folder_ids, and the discovery variable), fanout.topic (the work topic; the policy's fanout.staleAfter and fanout.splitAbove are kept), version 1 and, unless the policy names one, alerts.topic."
  default     = {}

  # The module merges into the policy: text would fail there with a message that names no variable.
  validation {
    condition     = can(keys(var.policy))
    error_message = "policy must be an object: an HCL object, or yamldecode(file(\"policy.yaml\")) for a YAML or JSON file."
  }

  # What the module sets would silently replace what the policy says.
  validation {
    condition     = !can(var.policy.discovery)
    error_message = "policy.discovery is set by the module: use organization_id, folder_ids and the discovery variable (include, exclude, labels, cache_ttl) instead."
  }

  validation {
    condition     = !can(var.policy.fanout.topic)
    error_message = "policy.fanout.topic is the module's work topic: leave it out (fanout.staleAfter and fanout.splitAbove are kept)."
  }

  validation {
    condition     = try(var.policy.version, 1) == 1
    error_message = "policy.version must be 1 (or left out)."
  }

  # The projects the policy lists are granted the role (main.tf): each a project ID as the policy
  # takes it (ProjectId in src/core/units.ts), checked before the grant is planned.
  validation {
    condition     = try(alltrue([for p in try(var.policy.projects, []) : can(regex("^([a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$", p))]), false)
    error_message = "policy.projects must be a list of project IDs such as \"my-project\" (lowercase letters, digits and hyphens, at most 30), not display names or resource names such as projects/my-project."
  }

  # The policy refuses an empty regions list, or a name that is no Cloud Run region's (RegionName in
  # src/core/units.ts), and every unit run would fail on it.
  validation {
    condition     = try(length(var.policy.regions) > 0 && alltrue([for r in var.policy.regions : can(regex("^[a-z]{2,15}-[a-z]{4,15}[1-9][0-9]?$", r))]), !can(var.policy.regions))
    error_message = "policy.regions, when given, must be a non-empty list of Cloud Run regions such as us-central1 (leave it out to govern every region that has GPU services)."
  }
}

variable "discovery" {
  type = object({
    include   = optional(list(string))
    exclude   = optional(list(string), [])
    labels    = optional(map(string))
    cache_ttl = optional(string, "1h")
  })
  description = "Filters on the projects found (globs on project ids, labels of their Cloud Run resources) and how long what was found is reused (cache_ttl, a duration such as \"1h\" or \"15m\")."
  default     = {}

  # The policy's duration format (src/core/duration.ts): caught here rather than by every run.
  validation {
    condition     = can(regex("^[0-9]+(d([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?|h([0-9]+m)?([0-9]+s)?([0-9]+ms)?|m([0-9]+s)?([0-9]+ms)?|s([0-9]+ms)?|ms)$", var.discovery.cache_ttl))
    error_message = "discovery.cache_ttl must be a duration such as \"1h\", \"15m\" or \"1h30m\": each unit (d, h, m, s, ms) once, largest first."
  }

  # Labels no Cloud Run resource can carry, or an empty include, would find no project: the policy
  # refuses them (src/core/policy.ts, LABEL_KEY and LABEL_VALUE of src/core/units.ts), caught here
  # rather than by every dispatch. https://cloud.google.com/resource-manager/docs/labels-overview#requirements
  validation {
    condition     = alltrue([for key in keys(coalesce(var.discovery.labels, {})) : can(regex("^[\\p{Ll}\\p{Lo}\\p{Lm}][\\p{Ll}\\p{Lo}\\p{Lm}\\p{M}\\p{N}_-]{0,62}$", key))])
    error_message = "discovery.labels keys must be 1 to 63 lowercase letters, digits, underscores or hyphens, starting with a lowercase letter: no Cloud Run resource has any other, so no project would be found."
  }

  validation {
    condition     = alltrue([for value in values(coalesce(var.discovery.labels, {})) : can(regex("^[\\p{Ll}\\p{Lo}\\p{Lm}\\p{M}\\p{N}_-]{0,63}$", value))])
    error_message = "discovery.labels values must be at most 63 lowercase letters, digits, underscores or hyphens: no Cloud Run resource has any other, so no project would be found."
  }

  validation {
    condition     = length(coalesce(var.discovery.labels, {})) <= 64
    error_message = "discovery.labels: a Cloud Run resource has at most 64 labels, so more would find no project."
  }

  validation {
    condition     = try(length(var.discovery.include) > 0, true)
    error_message = "discovery.include must not be empty (it would keep no project found): leave it out, or null, to keep every project."
  }

  # The policy takes at most 100 include and 100 exclude globs of 1 to 100 characters each
  # (src/core/discovery.ts); the rest of a glob's syntax is checked by the policy when it loads.
  validation {
    condition     = length(var.discovery.exclude) <= 100 && try(length(var.discovery.include) <= 100, true)
    error_message = "discovery.include and discovery.exclude must hold at most 100 globs each, as the policy takes."
  }

  validation {
    condition     = alltrue([for glob in flatten([var.discovery.include == null ? [] : var.discovery.include, var.discovery.exclude]) : length(glob) >= 1 && length(glob) <= 100])
    error_message = "discovery.include and discovery.exclude must hold globs of 1 to 100 characters: the policy refuses an empty glob or a longer one."
  }
}

variable "source_archive" {
  type        = string
  description = "Path of the function's source archive built by `npm run package` (dist/function.zip)."

  validation {
    condition     = endswith(var.source_archive, ".zip")
    error_message = "source_archive must be the path of a .zip file (the output of npm run package)."
  }
}

variable "schedule" {
  type        = string
  description = "When the dispatch runs (every unit is governed once per dispatch): a five-field unix-cron expression, in UTC. Keep its interval below the policy's fanout.staleAfter (30m by default): a unit whose last run is older shows as stuck in governor status --org, and the regional units of a split project name each other as stopped (governor.degraded, units-stopped)."
  default     = "*/5 * * * *"

  # Cloud Scheduler's unix-cron: in each field `*`, a number or the first three letters of a
  # month or day name, a range a-b, a step /n after either, lists of these with commas; "Cloud
  # Scheduler does not support L to mean the last day of the month"
  # (https://cloud.google.com/scheduler/docs/configuring/cron-job-schedules). A lone ? is let
  # through: the page does not say.
  validation {
    condition     = can(regex("^\\s*((\\?|(\\*|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?(,(\\*|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?)*)\\s+){4}(\\?|(\\*|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?(,(\\*|([0-9]+|[A-Za-z]{3})(-([0-9]+|[A-Za-z]{3}))?)(/[0-9]+)?)*)\\s*$", var.schedule))
    error_message = "schedule must be a five-field unix-cron expression such as \"*/5 * * * *\": numbers or three-letter month and day names, *, ranges, /steps and lists (Cloud Scheduler has no L, W or #)."
  }
}

variable "unit_concurrency" {
  type        = number
  description = "Most unit runs at once: the unit function's max instances, each serving one request at a time. Bounds the load on Google's APIs (Cloud Run Admin reads and writes, Monitoring) across the organisation."
  default     = 20

  validation {
    condition     = var.unit_concurrency >= 1 && var.unit_concurrency <= 1000 && floor(var.unit_concurrency) == var.unit_concurrency
    error_message = "unit_concurrency must be a whole number between 1 and 1000."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a work message before it goes to the dead-letter topic; the unit function is told it too (GOVERNOR_MAX_DELIVERY_ATTEMPTS), to alert on the last. The retry policy spreads them over a crashed unit's lease (minimum backoff (timeout_seconds + 30) / (max_delivery_attempts - 1) s, docs/organization.md). Pub/Sub allows 5 to 100: https://cloud.google.com/pubsub/docs/handling-failures#dead_letter_topic"
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number between 5 and 100 (Pub/Sub's bounds; the unit is told it as GOVERNOR_MAX_DELIVERY_ATTEMPTS, which takes whole numbers only)."
  }
}

variable "write" {
  type        = bool
  description = "Grant the write (run.services.update, and iam.serviceAccounts.actAs on the services' runtime accounts) in the governed scope, when the policy may write (mode enforce, or function.allow.enforce): a dry-run policy gets no write grant either way. false: the governor only reads (use mode dry-run)."
  default     = true
}

variable "enable_apis" {
  type        = bool
  description = "Enable in project_id the Cloud Asset API, which the dispatch's search calls are made from, and the Cloud Quotas API, which every unit reads quotas with (never disabled on destroy). The other APIs the module uses (Cloud Functions, Cloud Build, Artifact Registry, Cloud Run, Pub/Sub, Firestore, Cloud Scheduler) fail the apply itself when disabled; these two would only fail at run time."
  default     = true
}

variable "timeout_seconds" {
  type        = number
  description = "The unit function's request timeout; the work subscription's ack deadline follows it (at most 600 s)."
  default     = 300

  validation {
    condition     = var.timeout_seconds >= 60 && var.timeout_seconds <= 600 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number of seconds between 60 and 600 (the push subscription's ack deadline is at most 600 s; the unit's run deadline, GOVERNOR_RUN_DEADLINE, is timeout_seconds - 30 in whole seconds)."
  }
}

variable "state" {
  type = object({
    database_id         = optional(string, "gpu-governor-org")
    location_id         = optional(string)
    deletion_protection = optional(bool, true)
  })
  description = "The governor's state store: a Firestore (native mode) database of its own in project_id, created by the module in location_id (default: region). The governor's account gets roles/datastore.user on that database only (an IAM condition on its name), never on the project's (default) database."
  default     = {}

  # Firestore's rules for a database ID: "4-63 characters. Valid characters are /[a-z][0-9]-/ with
  # first character a letter and the last a letter or a number. Must not be UUID-like
  # /[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/"
  # (CreateDatabaseRequest.database_id,
  # https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Firestore.Admin.V1/latest/Google.Cloud.Firestore.Admin.V1.CreateDatabaseRequest).
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.state.database_id)) && !can(regex("[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", var.state.database_id))
    error_message = "state.database_id must be 4 to 63 lowercase letters, digits or hyphens starting with a letter, ending with a letter or digit, holding nothing UUID-like (Firestore refuses those), and not \"(default)\": the governor gets a database of its own, so that its access reaches no other data."
  }
  # A region or a multi-region (nam5, eur3): https://cloud.google.com/firestore/docs/locations
  validation {
    condition     = var.state.location_id == null || can(regex("^([a-z]+-[a-z]+[0-9]+|(nam|eur)[0-9]+)$", coalesce(var.state.location_id, "-")))
    error_message = "state.location_id must be a Firestore location: a region such as us-central1, or a multi-region such as nam5 or eur3."
  }
}

variable "notification_channels" {
  type        = list(string)
  description = "Notification channels (projects/P/notificationChannels/N) of the alert policies on dead-lettered work messages and on a dispatch that has stopped. Empty: the policies only open incidents in the console, and nobody is told that a unit failed every delivery or that nothing is governed any more."
  default     = []

  # AlertPolicy.notification_channels: "projects/[PROJECT_ID_OR_NUMBER]/notificationChannels/[CHANNEL_ID]"
  # (google/monitoring/v3/alert.proto; https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies).
  validation {
    condition     = alltrue([for channel in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", channel))])
    error_message = "notification_channels must hold channel names such as projects/my-project/notificationChannels/1234567890."
  }
}

variable "refusals_metric_projects" {
  type        = list(string)
  description = "Projects in which the module defines the logs-based metric gpu_governor_refused_requests (Cloud Run's 429s), which every unit reads in its project, as the single-project module does in each governed project. Projects found by discovery are known at run time only: list them here, or define the metric yourself (docs/organization.md gives the command). In a project without it, the 429s stay unknown and every run raises governor.degraded. Whoever applies needs roles/logging.configWriter in each."
  default     = []

  validation {
    condition     = alltrue([for p in var.refusals_metric_projects : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", p))])
    error_message = "refusals_metric_projects must hold project IDs (6 to 30 lowercase letters, digits and hyphens), not project numbers or display names."
  }
}

variable "dispatch_absent_minutes" {
  type        = number
  description = "An alert policy in project_id fires when the dispatch has answered no request successfully for this many minutes (null: no policy; 10 to 1410, as Monitoring allows an absence of at most 23.5 hours). Keep it a few times the schedule's interval: the default, 20, is four missed dispatches at the default schedule. It notifies notification_channels."
  default     = 20

  validation {
    condition = var.dispatch_absent_minutes == null || (
      floor(coalesce(var.dispatch_absent_minutes, 0)) == coalesce(var.dispatch_absent_minutes, 0) &&
      coalesce(var.dispatch_absent_minutes, 0) >= 10 &&
      coalesce(var.dispatch_absent_minutes, 0) <= 1410
    )
    error_message = "dispatch_absent_minutes must be a whole number of minutes from 10 to 1410 (Monitoring's metric-absence conditions allow at most 23.5 hours), or null for no alert policy."
  }
}

variable "unit_memory" {
  type        = string
  description = "Memory of each unit function instance, which runs the governor on one project (512Mi, with 1 vCPU, as the single-project module's function). docs/performance.md measured a run's peak at 238 MiB for 1,000 GPU services and 343 MiB for 10,000; raise it for larger projects, up to 4Gi (Cloud Run allows no more with 1 vCPU); 128Mi at least."
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.unit_memory))
    error_message = "unit_memory must look like 512Mi or 1Gi."
  }

  # The unit function has 1 vCPU (function.tf), and Cloud Run refuses more than 4 GiB with fewer
  # than 2 vCPUs (https://cloud.google.com/run/docs/configuring/services/memory-limits, "Required
  # minimum CPUs"), nor less than 128 MiB ("Minimum memory", same page). In MiB: M and G are
  # decimal (10^6 and 10^9 bytes).
  validation {
    condition     = try(tonumber(regex("^([0-9]+)(Mi|Gi|M|G)$", var.unit_memory)[0]) * lookup({ Mi = 1, Gi = 1024, M = 0.95367431640625, G = 953.67431640625 }, regex("^([0-9]+)(Mi|Gi|M|G)$", var.unit_memory)[1]) <= 4096, true)
    error_message = "unit_memory must be at most 4Gi: the unit function runs with 1 vCPU, and Cloud Run requires 2 vCPUs for more than 4 GiB."
  }

  validation {
    condition     = try(tonumber(regex("^([0-9]+)(Mi|Gi|M|G)$", var.unit_memory)[0]) * lookup({ Mi = 1, Gi = 1024, M = 0.95367431640625, G = 953.67431640625 }, regex("^([0-9]+)(Mi|Gi|M|G)$", var.unit_memory)[1]) >= 128, true)
    error_message = "unit_memory must be at least 128Mi, the least memory Cloud Run gives an instance."
  }
}
