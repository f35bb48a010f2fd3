variable "project_id" {
  type        = string
  description = "Project that hosts the governor: its function, scheduler job, topics, state database and service accounts."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6 to 30 lowercase letters, digits and hyphens), not a project number or display name."
  }
}

variable "region" {
  type        = string
  description = "Region of the function, the scheduler job and the source bucket. The regions the governor governs come from the policy."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1."
  }
}

variable "name" {
  type        = string
  description = "Name of the function, and the prefix of everything else the module creates (service accounts, topics, scheduler job, bucket, custom role)."
  default     = "gpu-governor"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,20}[a-z0-9]$", var.name))
    error_message = "name must be 6 to 22 lowercase letters, digits or hyphens, start with a letter and end with a letter or digit: service account ids are derived from it."
  }
}

variable "policy" {
  type        = any
  description = "The governor's policy (schema/policy.schema.json): YAML or JSON text, for example file(\"policy.yaml\"), or an object with the same keys. Terraform has no union type, hence `any`: the module checks that it decodes to an object with version 1, a non-empty projects list and, when present, a non-empty regions list; the function checks everything else at every run. The module sets alerts.topic to its alert topic when the policy leaves it out, and refuses a policy that names another topic."

  validation {
    condition     = can(keys(try(yamldecode(var.policy), var.policy)))
    error_message = "policy must be YAML or JSON text of an object, or an object."
  }

  validation {
    condition     = try(try(yamldecode(var.policy), var.policy).version == 1, false)
    error_message = "policy.version must be 1."
  }

  validation {
    condition     = try(length(try(yamldecode(var.policy), var.policy).projects) > 0, false)
    error_message = "policy.projects must be a non-empty list of project ids."
  }

  validation {
    condition = (
      !can(try(yamldecode(var.policy), var.policy).regions)
      || try(length(try(yamldecode(var.policy), var.policy).regions) > 0, false)
    )
    error_message = "policy.regions, when given, must be a non-empty list of regions (leave it out to govern every region that has GPU services)."
  }
}

variable "source_archive" {
  type        = string
  description = "Path of the function's source archive built by `npm run package` (dist/function.zip). It is uploaded under a name carrying its SHA-256, so a new build redeploys the function and an unchanged one does not."

  validation {
    condition     = endswith(var.source_archive, ".zip")
    error_message = "source_archive must be the path of a .zip file (the output of npm run package)."
  }
}

variable "source_bucket_name" {
  type        = string
  description = "Existing bucket to upload the source archive to. Null creates a private bucket named <project_id>-<name>-source."
  default     = null
}

variable "function" {
  type = object({
    timeout_seconds  = optional(number, 300)
    run_deadline     = optional(string, "240s")
    available_memory = optional(string, "512Mi")
    available_cpu    = optional(string, "1")
    environment      = optional(map(string), {})
  })
  description = "The function's resources. timeout_seconds bounds a request; run_deadline (GOVERNOR_RUN_DEADLINE, \"240s\" or \"4m\") is when the governor stops starting writes, and must be at least 15 s shorter than the timeout so that it can still publish and answer. environment adds variables; it cannot override the module's GOVERNOR_POLICY, GOVERNOR_STATE_STORE, GOVERNOR_FIRESTORE_*, GOVERNOR_RUN_DEADLINE or GOVERNOR_LOG_FORMAT. The function always runs at most one instance with one request at a time."
  default     = {}

  validation {
    condition     = var.function.timeout_seconds >= 60 && var.function.timeout_seconds <= 3600 && floor(var.function.timeout_seconds) == var.function.timeout_seconds
    error_message = "function.timeout_seconds must be a whole number of seconds from 60 to 3600 (540 at most with trigger = \"pubsub\")."
  }

  validation {
    condition     = can(regex("^[1-9][0-9]*(s|m)$", var.function.run_deadline))
    error_message = "function.run_deadline must be a duration in whole seconds or minutes, such as \"240s\" or \"4m\"."
  }

  validation {
    condition = try(
      tonumber(regex("^([0-9]+)(s|m)$", var.function.run_deadline)[0]) * (regex("^([0-9]+)(s|m)$", var.function.run_deadline)[1] == "m" ? 60 : 1) <= var.function.timeout_seconds - 15,
      false
    )
    error_message = "function.run_deadline must be at least 15 seconds shorter than function.timeout_seconds, so that a run that hits its deadline can still publish its alerts and answer."
  }

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.function.available_memory))
    error_message = "function.available_memory must look like 512Mi or 1Gi."
  }

  validation {
    condition = alltrue([
      for key in keys(var.function.environment) :
      !contains(["GOVERNOR_POLICY", "GOVERNOR_STATE_STORE", "GOVERNOR_FIRESTORE_DATABASE", "GOVERNOR_FIRESTORE_COLLECTION", "GOVERNOR_RUN_DEADLINE", "GOVERNOR_LOG_FORMAT"], key)
    ])
    error_message = "function.environment cannot set a variable the module sets itself (GOVERNOR_POLICY, GOVERNOR_STATE_STORE, GOVERNOR_FIRESTORE_DATABASE, GOVERNOR_FIRESTORE_COLLECTION, GOVERNOR_RUN_DEADLINE, GOVERNOR_LOG_FORMAT)."
  }
}

variable "trigger" {
  type        = string
  description = "How Cloud Scheduler starts a run. \"http\": the job calls the governorHttp entry point with an OIDC token of its own service account. \"pubsub\": the job publishes to a trigger topic and an Eventarc trigger, running as that same service account, delivers it to the governorEvent entry point (the function then accepts internal traffic only)."
  default     = "http"

  validation {
    condition     = contains(["http", "pubsub"], var.trigger)
    error_message = "trigger must be \"http\" or \"pubsub\"."
  }
}

variable "schedule" {
  type        = string
  description = "When the governor runs: a five-field unix-cron expression evaluated in time_zone."
  default     = "*/5 * * * *"

  validation {
    condition     = can(regex("^\\s*([0-9A-Za-z*/,?-]+\\s+){4}[0-9A-Za-z*/,?-]+\\s*$", var.schedule))
    error_message = "schedule must be a five-field cron expression such as \"*/5 * * * *\"."
  }
}

variable "time_zone" {
  type        = string
  description = "IANA time zone the schedule is evaluated in (the policy's time windows carry their own time zones)."
  default     = "Etc/UTC"

  validation {
    condition     = var.time_zone == "UTC" || can(regex("^[A-Z][A-Za-z_]*(/[A-Za-z0-9_+-]+){1,2}$", var.time_zone))
    error_message = "time_zone must be an IANA time zone name such as Etc/UTC or Europe/Paris."
  }
}

variable "scheduler_retry" {
  type = object({
    retry_count          = optional(number, 1)
    min_backoff_duration = optional(string, "30s")
    max_backoff_duration = optional(string, "120s")
    max_doublings        = optional(number, 2)
    max_retry_duration   = optional(string, "0s")
  })
  description = "Retries of a failed run by Cloud Scheduler. A run that fails is retried after min_backoff_duration; the next scheduled run comes anyway, so few retries are needed. A retry that arrives while a run is still going is refused (one request at a time) and counts as a failed attempt."
  default     = {}

  validation {
    condition     = var.scheduler_retry.retry_count >= 0 && var.scheduler_retry.retry_count <= 5
    error_message = "scheduler_retry.retry_count must be from 0 to 5."
  }

  validation {
    condition = alltrue([
      for duration in [var.scheduler_retry.min_backoff_duration, var.scheduler_retry.max_backoff_duration, var.scheduler_retry.max_retry_duration] :
      can(regex("^[0-9]+s$", duration))
    ])
    error_message = "scheduler_retry durations must be whole seconds such as \"30s\"."
  }
}

variable "paused" {
  type        = bool
  description = "Pause the scheduler job: the governor stops running and every service keeps the max instances it has. See the README for restoring the values from before the governor."
  default     = false
}

variable "alerts" {
  type = object({
    topic_name                 = optional(string)
    message_retention_duration = optional(string, "604800s")
    subscription = optional(object({
      name                       = optional(string)
      push_endpoint              = optional(string)
      push_service_account_email = optional(string)
      push_audience              = optional(string)
      filter                     = optional(string)
      ack_deadline_seconds       = optional(number, 60)
      message_retention_duration = optional(string, "604800s")
      max_delivery_attempts      = optional(number, 10)
      enable_message_ordering    = optional(bool, true)
    }))
    schema = optional(object({
      type       = string
      definition = string
      encoding   = optional(string, "JSON")
    }))
  })
  description = "The alert topic (default name <name>-alerts) and its retention. subscription, when set, creates a subscription (pull, or push to push_endpoint with an OIDC token of push_service_account_email when given) with a dead-letter topic <topic>-dead-letter and a pull subscription that keeps what lands there. schema attaches an Avro or Protocol Buffer schema you supply: Pub/Sub cannot enforce the JSON Schema in schema/alert.schema.json, see the README before using it."
  default     = {}

  validation {
    condition     = var.alerts.topic_name == null || can(regex("^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$", var.alerts.topic_name))
    error_message = "alerts.topic_name must be a Pub/Sub topic id: 3 to 255 characters, starting with a letter."
  }

  validation {
    condition     = can(regex("^[0-9]+s$", var.alerts.message_retention_duration)) && try(tonumber(trimsuffix(var.alerts.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.alerts.message_retention_duration, "s")) <= 2678400, false)
    error_message = "alerts.message_retention_duration must be whole seconds from 600s (10 minutes) to 2678400s (31 days)."
  }

  validation {
    condition     = var.alerts.subscription == null || try(startswith(var.alerts.subscription.push_endpoint, "https://"), var.alerts.subscription.push_endpoint == null)
    error_message = "alerts.subscription.push_endpoint must be an https:// URL, or null for a pull subscription."
  }

  validation {
    condition     = var.alerts.subscription == null || try(var.alerts.subscription.max_delivery_attempts >= 5 && var.alerts.subscription.max_delivery_attempts <= 100, false)
    error_message = "alerts.subscription.max_delivery_attempts must be from 5 to 100 (Pub/Sub dead-letter policy limits)."
  }

  validation {
    condition     = var.alerts.subscription == null || try(var.alerts.subscription.ack_deadline_seconds >= 10 && var.alerts.subscription.ack_deadline_seconds <= 600, false)
    error_message = "alerts.subscription.ack_deadline_seconds must be from 10 to 600."
  }

  validation {
    condition     = var.alerts.schema == null || try(contains(["AVRO", "PROTOCOL_BUFFER"], var.alerts.schema.type) && contains(["JSON", "BINARY"], var.alerts.schema.encoding), false)
    error_message = "alerts.schema.type must be AVRO or PROTOCOL_BUFFER (the only kinds Pub/Sub supports) and alerts.schema.encoding JSON or BINARY."
  }
}

variable "state" {
  type = object({
    create_database     = optional(bool, true)
    database_id         = optional(string, "gpu-governor")
    location_id         = optional(string)
    collection          = optional(string, "gpu-governor")
    deletion_protection = optional(bool, true)
  })
  description = "Where the governor keeps alert condition state between runs (Firestore in native mode). create_database creates the database database_id in location_id (default: region); false uses an existing one. The governor's service account gets roles/datastore.user on that database only (an IAM condition on its name)."
  default     = {}

  validation {
    condition     = var.state.database_id == "(default)" || can(regex("^[a-z][a-z0-9-]{2,61}[a-z0-9]$", var.state.database_id))
    error_message = "state.database_id must be \"(default)\" or 4 to 63 lowercase letters, digits or hyphens starting with a letter."
  }

  validation {
    condition     = can(regex("^[^/]{1,1500}$", var.state.collection)) && var.state.collection != "." && var.state.collection != ".." && !startswith(var.state.collection, "__")
    error_message = "state.collection must be a Firestore collection id: no slash, not . or .., not starting with __."
  }
}

variable "governed_service_accounts" {
  type        = list(string)
  description = "Runtime service accounts (emails) of the governed Cloud Run services. Updating a service can require iam.serviceAccounts.actAs on its runtime identity; the governor gets roles/iam.serviceAccountUser on each account listed, and on nothing else."
  default     = []

  validation {
    condition = alltrue([
      for email in var.governed_service_accounts :
      can(regex("^[a-z0-9-]+@[a-z0-9.-]+\\.gserviceaccount\\.com$", email))
    ])
    error_message = "governed_service_accounts must hold service account emails (name@project.iam.gserviceaccount.com)."
  }
}

variable "build_service_account" {
  type        = string
  description = "Email of an existing service account for Cloud Build to build the function with. Null creates <name>-build with the roles Google documents for function builds (logs writer, Artifact Registry writer, Storage object admin). Never the default compute account."
  default     = null

  validation {
    condition     = var.build_service_account == null || !can(regex("-compute@developer\\.gserviceaccount\\.com$", coalesce(var.build_service_account, "-")))
    error_message = "build_service_account must not be the default compute service account."
  }
}

variable "enable_apis" {
  type        = bool
  description = "Enable the APIs the governor and this module need in project_id. They are never disabled on destroy."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every labelled resource the module creates (the module adds app = gpu-governor)."
  default     = {}
}
