variable "name" {
  description = "Prefix of the roles' names."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OpenID Connect provider."
  type        = string
}

variable "oidc_issuer_url" {
  description = "Issuer URL of the cluster's service account tokens (https://oidc.eks...)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace the OptiBid release is installed in."
  type        = string
  default     = "optibid"
}

variable "kafka_service_account" {
  description = "Service account of the OptiBid roles (the Kafka clients)."
  type        = string
  default     = "optibid"
}

variable "backup_service_account" {
  description = "Service account of the backup job."
  type        = string
  default     = "optibid-backup"
}

variable "msk_cluster_arn" {
  description = "ARN of the MSK cluster the Kafka role connects to."
  type        = string
}

variable "topic_prefix" {
  description = "Prefix of the topics and consumer groups the Kafka role may use (OPTIBID_TOPIC_PREFIX; empty: all of the cluster's)."
  type        = string
  default     = ""
}

variable "backup_bucket_arn" {
  description = "ARN of the backup bucket."
  type        = string
}

variable "backup_kms_key_arn" {
  description = "ARN of the key the backup bucket encrypts with."
  type        = string
}

variable "rds_resource_ids" {
  description = "Resource ids of the RDS instances the backup role may log in to with IAM authentication (none for a Timescale Cloud database)."
  type        = list(string)
  default     = []
}

variable "database_backup_user" {
  description = "PostgreSQL user the backup role logs in as (it must be granted rds_iam in the database)."
  type        = string
  default     = "optibid_backup"
}

variable "tags" {
  description = "Tags of every role."
  type        = map(string)
  default     = {}
}
