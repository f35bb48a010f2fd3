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
  description = "The function's resources. timeout_seconds bounds a request; run_deadline (GOVERNOR_RUN_DEADLINE, \"240s\" or \"4m\") is when the governor stops starting writes, and must be at least 15 s shorter than the timeout so that it can still publish and answer. available_cpu and available_memory must fit together as Cloud Run requires (checked at plan time): 1, 2, 4, 6 or 8 vCPUs or 0.08 to 1, at least 128 MiB, at most 4 GiB with 1 vCPU, 8 GiB with 2, 32 GiB in all. environment adds variables; it cannot override the module's GOVERNOR_POLICY, GOVERNOR_STATE_STORE, GOVERNOR_FIRESTORE_*, GOVERNOR_RUN_DEADLINE, GOOGLE_CLOUD_PROJECT or NODE_ENV, nor set GOVERNOR_STATE_DIR (the state is in Firestore) or anything that redirects the API calls (*_EMULATOR_HOST, GOVERNOR_EMULATOR_*, proxies, TLS overrides, GOOGLE_APPLICATION_CREDENTIALS). The function always runs at most one instance with one request at a time."
  default     = {}

  # Cloud Scheduler waits for an HTTP target at most 30 minutes: Job.attempt_deadline "must be in
  # the interval [15 seconds, 30 minutes]"
  # (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Scheduler.V1/latest/Google.Cloud.Scheduler.V1.Job),
  # and the job's deadline is the timeout plus 30 s (scheduler.tf). A longer timeout would have the
  # job give up on a run still going, count it failed and send its retry into the busy function.
  validation {
    condition     = var.function.timeout_seconds >= 60 && var.function.timeout_seconds <= 1770 && floor(var.function.timeout_seconds) == var.function.timeout_seconds
    error_message = "function.timeout_seconds must be a whole number of seconds from 60 to 1770, so that Cloud Scheduler's attempt deadline (the timeout plus 30 s, at most 30 minutes) outlasts a run (540 at most with trigger = \"pubsub\")."
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

  # A function is a Cloud Run service, and Cloud Run refuses CPU and memory that do not fit: "any of
  # the values shown in the following table" (1, 2, 4, 6 or 8 vCPUs), or "any value between 0.08 and
  # 1, in increments of 0.001" (https://cloud.google.com/run/docs/configuring/services/cpu). An older
  # version of that page allowed "any integer value up to a maximum of 8"; Google's reference for
  # another API that sets a Cloud Run service's CPU says "1, 2, 4, 6, or 8 CPUs" (RunConfig.cpu,
  # https://googleapis.dev/dotnet/Google.Apis.FirebaseAppHosting.v1/latest/api/Google.Apis.FirebaseAppHosting.v1.Data.RunConfig.html),
  # so 3, 5 and 7 are refused here rather than by a deployment.
  validation {
    condition     = can(regex("^(0\\.[0-9]{1,3}|1(\\.0{1,3})?|[2468])$", var.function.available_cpu)) && try(tonumber(var.function.available_cpu) >= 0.08, false)
    error_message = "function.available_cpu must be 1, 2, 4, 6 or 8 vCPUs, or a fraction from 0.08 to 1 such as \"0.5\" (Cloud Run's CPU limits)."
  }

  # Memory against CPU: more than 4 GiB needs 2 vCPUs, more than 8 GiB 4, more than 16 GiB 6, more
  # than 24 GiB 8, 32 GiB is the most and 128 MiB the least ("Minimum memory")
  # (https://cloud.google.com/run/docs/configuring/services/memory-limits); 4 vCPUs need 2 GiB, 6 or
  # 8 need 4 GiB; under 1 vCPU, more than 512 MiB needs 0.5 and more than 1 GiB needs 1
  # (https://cloud.google.com/run/docs/configuring/services/cpu). m is the memory in MiB (M and G
  # are decimal: 10^6 and 10^9 bytes), c the vCPUs. Values of the wrong form are refused above.
  validation {
    condition = try(alltrue(flatten([
      for m in [tonumber(regex("^([0-9]+)(Mi|Gi|M|G)$", var.function.available_memory)[0]) * lookup({ Mi = 1, Gi = 1024, M = 0.95367431640625, G = 953.67431640625 }, regex("^([0-9]+)(Mi|Gi|M|G)$", var.function.available_memory)[1])] : [
        for c in [tonumber(var.function.available_cpu)] : [
          m <= 32768,
          m >= 128,
          m <= 4096 || c >= 2,
          m <= 8192 || c >= 4,
          m <= 16384 || c >= 6,
          m <= 24576 || c >= 8,
          c < 4 || m >= 2048,
          c < 6 || m >= 4096,
          m <= 512 || c >= 0.5,
          m <= 1024 || c >= 1,
        ]
      ]
    ])), true)
    error_message = "function.available_memory does not fit function.available_cpu as Cloud Run requires: more than 4 GiB needs 2 vCPUs, more than 8 GiB 4, more than 16 GiB 6, more than 24 GiB 8, 32 GiB at most and 128 MiB at least; 4 vCPUs need 2 GiB and 6 or 8 need 4 GiB; under 1 vCPU, more than 512 MiB needs 0.5 and more than 1 GiB needs 1."
  }

  validation {
    condition = alltrue([
      for key in keys(var.function.environment) :
      !contains(["GOVERNOR_POLICY", "GOVERNOR_STATE_STORE", "GOVERNOR_FIRESTORE_DATABASE", "GOVERNOR_FIRESTORE_COLLECTION", "GOVERNOR_RUN_DEADLINE", "GOOGLE_CLOUD_PROJECT", "NODE_ENV"], key)
    ])
    error_message = "function.environment cannot set a variable the module sets itself (GOVERNOR_POLICY, GOVERNOR_STATE_STORE, GOVERNOR_FIRESTORE_DATABASE, GOVERNOR_FIRESTORE_COLLECTION, GOVERNOR_RUN_DEADLINE, GOOGLE_CLOUD_PROJECT, NODE_ENV)."
  }

  # The module keeps the state in Firestore; the function refuses the file store's folder beside
  # it (src/runtime-options.ts), so that every run would fail as misconfigured: refused here first.
  validation {
    condition = alltrue([
      for key in keys(var.function.environment) : key != "GOVERNOR_STATE_DIR"
    ])
    error_message = "function.environment cannot set GOVERNOR_STATE_DIR: the module keeps the state in Firestore, and the function refuses a file store's folder beside it (every run would fail as misconfigured)."
  }

  # Variables that would send the function's API calls (and, for an emulator host, its writes and
  # alerts) somewhere else than Google, or weaken how it checks who it talks to.
  validation {
    condition = alltrue([
      for key in keys(var.function.environment) :
      !can(regex("(?i)(_EMULATOR_HOST$|^GOVERNOR_EMULATOR_|^(HTTPS?|GRPC|ALL)_PROXY$|^GRPC_DEFAULT_SSL_ROOTS_FILE_PATH$|^NODE_(OPTIONS|EXTRA_CA_CERTS|TLS_REJECT_UNAUTHORIZED)$|^GOOGLE_APPLICATION_CREDENTIALS$)", key))
    ])
    error_message = "function.environment cannot set *_EMULATOR_HOST, GOVERNOR_EMULATOR_*, a proxy (HTTP_PROXY, HTTPS_PROXY, GRPC_PROXY, ALL_PROXY), TLS or Node.js overrides (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, NODE_OPTIONS, NODE_EXTRA_CA_CERTS, NODE_TLS_REJECT_UNAUTHORIZED) or GOOGLE_APPLICATION_CREDENTIALS: each would redirect the function's Google API calls or change whom they trust."
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

variable "time_zone" {
  type        = string
  description = "IANA time zone the schedule is evaluated in (the policy's time windows carry their own time zones)."
  default     = "Etc/UTC"

  # Cloud Scheduler takes "a time zone name from the tz database", and "utc" for UTC
  # (https://cloud.google.com/python/docs/reference/cloudscheduler/1.2.1/google.cloud.scheduler_v1.types.Job):
  # an Area/Location name, or one of the tz database's names without a slash.
  validation {
    condition = contains([
      "utc", "CET", "CST6CDT", "Cuba", "EET", "EST", "EST5EDT", "Egypt", "Eire", "GB", "GB-Eire",
      "GMT", "GMT+0", "GMT-0", "GMT0", "Greenwich", "HST", "Hongkong", "Iceland", "Iran", "Israel",
      "Jamaica", "Japan", "Kwajalein", "Libya", "MET", "MST", "MST7MDT", "NZ", "NZ-CHAT", "Navajo",
      "PRC", "PST8PDT", "Poland", "Portugal", "ROC", "ROK", "Singapore", "Turkey", "UCT", "UTC",
      "Universal", "W-SU", "WET", "Zulu",
    ], var.time_zone) || can(regex("^[A-Z][A-Za-z_]*(/[A-Za-z0-9_+-]+){1,2}$", var.time_zone))
    error_message = "time_zone must be a tz database time zone name such as Etc/UTC, Europe/Paris or GMT."
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
  description = "Retries of a failed run by Cloud Scheduler. A run that fails is retried after min_backoff_duration; the next scheduled run comes anyway, so few retries are needed. A retry that arrives while a run is still going is refused (one request at a time) and counts as a failed attempt. retry_count is a whole number from 0 to 5, max_doublings a whole number, and min_backoff_duration at most max_backoff_duration."
  default     = {}

  # "Values greater than 5 and negative values are not allowed" (RetryConfig.retry_count, an
  # int32: https://cloud.google.com/scheduler/docs/configuring/retry-jobs).
  validation {
    condition     = var.scheduler_retry.retry_count >= 0 && var.scheduler_retry.retry_count <= 5 && floor(var.scheduler_retry.retry_count) == var.scheduler_retry.retry_count
    error_message = "scheduler_retry.retry_count must be a whole number from 0 to 5."
  }

  # max_doublings is an int32 that counts doublings of the retry interval; Google's reference
  # gives no bound, so the module refuses only what counts nothing: a negative or part number.
  validation {
    condition     = var.scheduler_retry.max_doublings >= 0 && floor(var.scheduler_retry.max_doublings) == var.scheduler_retry.max_doublings
    error_message = "scheduler_retry.max_doublings must be a whole number from 0."
  }

  # "A job's retry interval starts at min_backoff_duration, then doubles max_doublings times ...
  # and finally retries at intervals of max_backoff_duration" (RetryConfig reference,
  # https://cloud.google.com/python/docs/reference/cloudscheduler/1.3.2/google.cloud.scheduler_v1.types.RetryConfig).
  # Google does not say what a minimum above the maximum does: refused, rather than guessed.
  # (A duration of another shape is refused by the next check; try() leaves it to that one.)
  validation {
    condition     = try(tonumber(trimsuffix(var.scheduler_retry.min_backoff_duration, "s")) <= tonumber(trimsuffix(var.scheduler_retry.max_backoff_duration, "s")), true)
    error_message = "scheduler_retry.min_backoff_duration must not be longer than max_backoff_duration."
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
  description = "The alert topic (default name <name>-alerts) and its retention. subscription, when set, creates a subscription (pull, or push to push_endpoint, which requires push_service_account_email, an account of project_id: every push carries an OIDC token of that account, audience push_audience or else the endpoint) with a dead-letter topic <topic>-dead-letter and a pull subscription that keeps what lands there. schema attaches an Avro or Protocol Buffer schema you supply: Pub/Sub cannot enforce the JSON Schema in schema/alert.schema.json, see the README before using it."
  default     = {}

  # Topic.name and Subscription.name: "must start with a letter, and contain only letters
  # ([A-Za-z]), numbers ([0-9]), dashes (-), underscores (_), periods (.), tildes (~), plus (+) or
  # percent signs (%). It must be between 3 and 255 characters in length, and it must not start
  # with "goog"" (google/pubsub/v1/pubsub.proto;
  # https://cloud.google.com/python/docs/reference/pubsub/1.4.3/google.cloud.pubsub_v1.types.Topic).
  # The topic name also names <topic>-dead-letter and <topic>-subscription: at most 242
  # characters leaves them room.
  validation {
    condition     = var.alerts.topic_name == null || try(can(regex("^[A-Za-z][A-Za-z0-9._~+%-]{2,241}$", var.alerts.topic_name)) && !startswith(var.alerts.topic_name, "goog"), false)
    error_message = "alerts.topic_name must be a Pub/Sub topic id: 3 to 242 characters (the module appends -dead-letter and -subscription), a letter first, then letters, digits, - _ . ~ + or %, and not starting with goog."
  }

  validation {
    condition     = try(var.alerts.subscription.name == null, true) || try(can(regex("^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$", var.alerts.subscription.name)) && !startswith(var.alerts.subscription.name, "goog"), false)
    error_message = "alerts.subscription.name must be a Pub/Sub subscription id: 3 to 255 characters, a letter first, then letters, digits, - _ . ~ + or %, and not starting with goog."
  }

  validation {
    condition     = can(regex("^[0-9]+s$", var.alerts.message_retention_duration)) && try(tonumber(trimsuffix(var.alerts.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.alerts.message_retention_duration, "s")) <= 2678400, false)
    error_message = "alerts.message_retention_duration must be whole seconds from 600s (10 minutes) to 2678400s (31 days)."
  }

  # https://cloud.google.com/pubsub/docs/subscription-properties: 10 minutes to 31 days.
  validation {
    condition     = var.alerts.subscription == null || try(can(regex("^[0-9]+s$", var.alerts.subscription.message_retention_duration)) && tonumber(trimsuffix(var.alerts.subscription.message_retention_duration, "s")) >= 600 && tonumber(trimsuffix(var.alerts.subscription.message_retention_duration, "s")) <= 2678400, false)
    error_message = "alerts.subscription.message_retention_duration must be whole seconds from 600s (10 minutes) to 2678400s (31 days)."
  }

  validation {
    condition     = var.alerts.subscription == null || try(startswith(var.alerts.subscription.push_endpoint, "https://"), var.alerts.subscription.push_endpoint == null)
    error_message = "alerts.subscription.push_endpoint must be an https:// URL, or null for a pull subscription."
  }

  validation {
    condition     = var.alerts.subscription == null || try(var.alerts.subscription.push_service_account_email == null || can(regex("^[a-z0-9-]+@[a-z0-9.-]+\\.gserviceaccount\\.com$", var.alerts.subscription.push_service_account_email)), false)
    error_message = "alerts.subscription.push_service_account_email must be a service account email (name@project.iam.gserviceaccount.com)."
  }

  # A push endpoint receives alerts; without an OIDC token it cannot tell Pub/Sub from anyone else.
  validation {
    condition     = var.alerts.subscription == null || try(var.alerts.subscription.push_endpoint == null || var.alerts.subscription.push_service_account_email != null, false)
    error_message = "alerts.subscription.push_service_account_email is required with a push_endpoint: Pub/Sub then signs every push with an OIDC token of that account, which the endpoint must verify."
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
  description = "Where the governor keeps alert condition state between runs (Firestore in native mode). create_database creates the database database_id in location_id (default: region); false uses an existing one, which must be the governor's own: \"(default)\" is refused. The governor's service account gets roles/datastore.user on that database only (an IAM condition on its name)."
  default     = {}

  # The (default) database is usually shared with applications: the governor's roles/datastore.user
  # there would reach their data too. It gets a database of its own.
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

  # Firestore: "Must be no longer than 1,500 bytes" of UTF-8
  # (https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields), which the
  # function checks too (src/runtime-options.ts). Terraform counts characters, not bytes; the
  # base64 of the UTF-8 bytes (https://developer.hashicorp.com/terraform/language/functions/base64encode)
  # is 4 characters per 3 bytes, so 1,500 bytes are at most 2,000 characters of it.
  validation {
    condition     = can(regex("^[^/]+$", var.state.collection)) && length(base64encode(var.state.collection)) <= 2000 && var.state.collection != "." && var.state.collection != ".." && !startswith(var.state.collection, "__")
    error_message = "state.collection must be a Firestore collection id: at most 1,500 bytes of UTF-8, no slash, not . or .., not starting with __."
  }
}

variable "write_access" {
  type = object({
    services = optional(list(object({
      project = optional(string)
      region  = string
      name    = string
    })), [])
    project_wide = optional(bool, false)
  })
  description = "Which Cloud Run services the governor may update (run.services.update, through a custom role holding that permission alone). services: each service it may write (project defaults to project_id), granted on that service only. project_wide: every service of every governed project, including services created later, which also lets a compromised function redeploy any of them; see the README. Default: none, which suits a dry-run policy; a policy that enforces with no write access is refused at plan time. Granted only when the policy may write (mode enforce, or function.allow.enforce): a dry-run policy gets no write grant, nor actAs on any account."
  default     = {}

  validation {
    condition     = !(var.write_access.project_wide && length(var.write_access.services) > 0)
    error_message = "write_access takes either services or project_wide = true, not both."
  }

  # A service id "must begin with letter, and cannot end with hyphen; must contain fewer than 50
  # characters" (serviceId of
  # https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services/create).
  validation {
    condition = alltrue([
      for service in var.write_access.services :
      can(regex("^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$", service.name)) && can(regex("^[a-z]+-[a-z]+[0-9]+$", service.region)) && (service.project == null || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", coalesce(service.project, "-"))))
    ])
    error_message = "write_access.services entries need a Cloud Run service name (1 to 49 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen), a region such as us-central1 and, when given, a project ID."
  }
}

variable "governed_service_accounts" {
  type = object({
    default_compute_account = optional(bool, true)
    emails                  = optional(list(string), [])
  })
  description = "Runtime service accounts of the services the governor writes. Updating a Cloud Run service requires iam.serviceAccounts.actAs on its runtime account (Google does not say whether a scaling-only update does), so the governor gets roles/iam.serviceAccountUser on: the default compute account (PROJECT_NUMBER-compute@developer.gserviceaccount.com) of each governed project, which services run as when they name no account, unless default_compute_account = false; and each account in emails. Nothing is granted while write_access grants no write."
  default     = {}

  validation {
    condition = alltrue([
      for email in var.governed_service_accounts.emails :
      can(regex("^[a-z0-9-]+@[a-z0-9.-]+\\.gserviceaccount\\.com$", email))
    ])
    error_message = "governed_service_accounts.emails must hold service account emails (name@project.iam.gserviceaccount.com)."
  }
}

variable "build_service_account" {
  type        = string
  description = "Email of an existing service account for Cloud Build to build the function with. Null creates <name>-build with the roles Google documents for function builds, each on the one resource it needs: logs writer (project), Artifact Registry writer on the module's image repository, Storage object admin on the source bucket, and Storage object viewer on Cloud Functions' own source bucket gcf-v2-sources-PROJECT_NUMBER-REGION, which the build fetches the archive from. An account given here gets nothing from the module: grant it those yourself. Never the default compute account."
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^[a-z0-9-]+@[a-z0-9.-]+\\.gserviceaccount\\.com$", coalesce(var.build_service_account, "-")))
    error_message = "build_service_account must be a service account email (name@project.iam.gserviceaccount.com)."
  }

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
  description = "Labels added to every labelled resource the module creates (the module adds app = gpu-governor). Google's rules: keys of lowercase letters, digits, \"_\" and \"-\" starting with a letter, values of the same, each at most 63 characters."
  default     = {}

  # https://cloud.google.com/resource-manager/docs/labels-overview#requirements (international
  # lowercase letters are allowed): refused here rather than by the first resource created.
  validation {
    condition     = alltrue([for key in keys(var.labels) : can(regex("^[\\p{Ll}\\p{Lo}][\\p{Ll}\\p{Lo}\\p{N}_-]{0,62}$", key))])
    error_message = "labels keys must be 1 to 63 lowercase letters, digits, underscores or hyphens, starting with a lowercase letter."
  }

  validation {
    condition     = alltrue([for value in values(var.labels) : can(regex("^[\\p{Ll}\\p{Lo}\\p{N}_-]{0,63}$", value))])
    error_message = "labels values must be at most 63 lowercase letters, digits, underscores or hyphens."
  }

  validation {
    condition     = length(var.labels) <= 63
    error_message = "labels takes at most 63 labels: a resource carries at most 64, and the module adds app."
  }
}

variable "monitoring" {
  type = object({
    dashboard             = optional(bool, true)
    not_running_minutes   = optional(number, 20)
    notification_channels = optional(list(string), [])
  })
  description = "The governor's own Cloud Monitoring dashboard (terraform/dashboards/governor.json) and an alert policy that fires when the governor has written no run metric for not_running_minutes (null: no policy; 10 to 1410, as Monitoring allows an absence of at most 23.5 hours), in each governed project, where the governor writes its custom metrics. notification_channels: ids (projects/P/notificationChannels/N) the policy notifies."
  default     = {}

  validation {
    condition = var.monitoring.not_running_minutes == null || (
      floor(coalesce(var.monitoring.not_running_minutes, 0)) == coalesce(var.monitoring.not_running_minutes, 0) &&
      coalesce(var.monitoring.not_running_minutes, 0) >= 10 &&
      coalesce(var.monitoring.not_running_minutes, 0) <= 1410
    )
    error_message = "monitoring.not_running_minutes must be a whole number of minutes from 10 to 1410 (Monitoring's metric-absence conditions allow at most 23.5 hours), or null for no alert policy."
  }

  # AlertPolicy.notification_channels: "projects/[PROJECT_ID_OR_NUMBER]/notificationChannels/[CHANNEL_ID]"
  # (google/monitoring/v3/alert.proto; https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies).
  validation {
    condition     = alltrue([for channel in var.monitoring.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", channel))])
    error_message = "monitoring.notification_channels must hold channel names such as projects/my-project/notificationChannels/1234567890."
  }
}

variable "quota_requests" {
  type        = bool
  description = "Let the governor file GPU quota increase requests (Cloud Quotas QuotaPreference) for pools under sustained pressure: grants cloudquotas.quotas.update, through a custom role holding that permission alone, in every governed project. Needed only when the policy sets quotaRequests.enabled: true (a policy that does so without it is refused at plan time). Default false: no such permission, and the governor can ask Google for nothing."
  default     = false
}
