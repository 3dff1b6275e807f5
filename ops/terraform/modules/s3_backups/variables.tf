variable "bucket_name" {
  description = "Name of the backup bucket (unique across S3); the access-log bucket is this name with -access-logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,49}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3 to 51 lower-case letters, digits, dots or hyphens (the log bucket adds 12 characters)."
  }
}

variable "glacier_after_days" {
  description = "Days after which a backup moves to Glacier Instant Retrieval."
  type        = number
  default     = 30
}

variable "expire_after_days" {
  description = "Days after which a backup expires (becomes a noncurrent version)."
  type        = number
  default     = 400
}

variable "noncurrent_expire_after_days" {
  description = "Days an overwritten or expired backup version is kept before it is deleted."
  type        = number
  default     = 30
}

variable "object_lock_days" {
  description = "Object Lock retention of each new backup, days (0: no Object Lock). Object Lock can be enabled on the bucket but never turned off."
  type        = number
  default     = 0

  validation {
    condition     = var.object_lock_days >= 0
    error_message = "object_lock_days must be 0 or more."
  }
}

variable "object_lock_mode" {
  description = "Object Lock mode when object_lock_days > 0: GOVERNANCE (privileged users may override) or COMPLIANCE (nobody may, not even the account's root)."
  type        = string
  default     = "GOVERNANCE"

  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.object_lock_mode)
    error_message = "object_lock_mode must be GOVERNANCE or COMPLIANCE."
  }
}

variable "access_log_expire_after_days" {
  description = "Days the server access logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
