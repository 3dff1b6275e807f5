variable "name" {
  description = "Identifier of the instance, and the prefix of everything this module names."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the instance."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the instance and its standby (two availability zones or more)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "A Multi-AZ instance needs subnets in at least two availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups whose members may connect on port 5432, by a name of their role (static keys: the ids may be known only after apply)."
  type        = map(string)
}

variable "engine_version" {
  description = "PostgreSQL version (a major alone follows RDS's newest minor of it)."
  type        = string
  default     = "17"
}

variable "parameter_group_family" {
  description = "Parameter group family matching engine_version (postgres17 for 17)."
  type        = string
  default     = "postgres17"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "allocated_storage_gb" {
  description = "Storage allocated at creation, GiB."
  type        = number
  default     = 100
}

variable "max_allocated_storage_gb" {
  description = "Ceiling of storage autoscaling, GiB."
  type        = number
  default     = 1000
}

variable "database_name" {
  description = "Database made at creation (OPTIBID_POSTGRES_DB of the local stack)."
  type        = string
  default     = "optibid"
}

variable "master_username" {
  description = "Master user; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "optibid_admin"
}

variable "backup_retention_days" {
  description = "Days automated backups (and point-in-time recovery) are kept (1 to 35)."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "performance_insights_retention_days" {
  description = "Days of Performance Insights history (7 is free; otherwise a multiple of 31, up to 731)."
  type        = number
  default     = 7
}

variable "monitoring_interval_s" {
  description = "Seconds between enhanced monitoring samples (1, 5, 10, 15, 30 or 60)."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.monitoring_interval_s)
    error_message = "monitoring_interval_s must be 1, 5, 10, 15, 30 or 60."
  }
}

variable "log_min_duration_ms" {
  description = "Statements slower than this are logged, milliseconds."
  type        = number
  default     = 1000
}

variable "log_retention_days" {
  description = "Days the server and upgrade logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
