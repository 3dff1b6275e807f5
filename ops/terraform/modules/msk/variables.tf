variable "name" {
  description = "Name of the cluster, and the prefix of everything this module names."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the brokers, one per availability zone (2 or 3)."
  type        = list(string)

  validation {
    condition     = contains([2, 3], length(var.subnet_ids))
    error_message = "MSK takes subnets in 2 or 3 availability zones."
  }
}

variable "client_security_group_ids" {
  description = "Security groups whose members may connect to the brokers, by a name of their role (static keys: the ids may be known only after apply)."
  type        = map(string)
}

variable "kafka_version" {
  description = "Apache Kafka version of the brokers, as MSK spells it (3.x or 4.x, e.g. 4.0.x.kraft)."
  type        = string
  default     = "4.0.x.kraft"

  validation {
    condition     = can(regex("^[34]\\.", var.kafka_version))
    error_message = "kafka_version must be a 3.x or 4.x release."
  }
}

variable "instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "brokers_per_az" {
  description = "Brokers in each availability zone."
  type        = number
  default     = 1
}

variable "volume_size_gb" {
  description = "EBS storage of each broker, GiB (the raw market-data topics are kept for the catalog's retention)."
  type        = number
  default     = 500
}

variable "enhanced_monitoring" {
  description = "CloudWatch metrics level: DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION."
  type        = string
  default     = "PER_TOPIC_PER_BROKER"

  validation {
    condition     = contains(["DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION"], var.enhanced_monitoring)
    error_message = "enhanced_monitoring must be DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER or PER_TOPIC_PER_PARTITION."
  }
}

variable "scram_enabled" {
  description = "Accept SASL/SCRAM-SHA-512 logins (port 9096) besides SASL/IAM (port 9098)."
  type        = bool
  default     = true
}

variable "scram_secret_arns" {
  description = "Secrets Manager secrets (named AmazonMSK_..., encrypted with this module's key) holding the SCRAM users."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the broker logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
