variable "name" {
  description = "Id of the replication group, and the prefix of everything this module names."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache nodes (two availability zones or more)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Multi-AZ failover needs subnets in at least two availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups whose members may connect on port 6379, by a name of their role (static keys: the ids may be known only after apply)."
  type        = map(string)
}

variable "engine_version" {
  description = "Redis version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Node type of the primary and the replicas."
  type        = string
  default     = "cache.m7g.large"
}

variable "num_cache_clusters" {
  description = "Nodes: one primary and the rest replicas (2 or more, for failover)."
  type        = number
  default     = 2

  validation {
    condition     = var.num_cache_clusters >= 2
    error_message = "Automatic failover needs a replica: num_cache_clusters must be 2 or more."
  }
}

variable "auth_token" {
  description = "AUTH token of the cache (16 to 128 printable characters, none of @, \" or /); the password of OPTIBID_REDIS_URL."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.auth_token) >= 16 && length(var.auth_token) <= 128 && !can(regex("[@\"/ ]", var.auth_token))
    error_message = "auth_token must be 16 to 128 characters without @, \", / or spaces."
  }
}

variable "snapshot_retention_days" {
  description = "Days daily snapshots are kept."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days the slow and engine logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
