variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Name of the deployment: the prefix of the VPC, cluster, brokers, database, cache and roles."
  type        = string
  default     = "optibid-production"
}

variable "tags" {
  description = "Tags added to every resource, besides Project, Environment and ManagedBy."
  type        = map(string)
  default     = {}
}

# Network

variable "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones spanned (2 or 3, of var.region)."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones instead of one per zone."
  type        = bool
  default     = false
}

# Kubernetes

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS cluster."
  type        = string
  default     = "1.33"
}

variable "eks_endpoint_public_access" {
  description = "Open the Kubernetes API to the internet from eks_public_access_cidrs (off: VPC only, reached through a VPN or bastion)."
  type        = bool
  default     = false
}

variable "eks_public_access_cidrs" {
  description = "Ranges allowed to the public Kubernetes API endpoint when it is open."
  type        = list(string)
  default     = []
}

variable "eks_admin_principal_arns" {
  description = "IAM roles or users given cluster-admin access, besides the identity that applies this."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the node group."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "node_min_size" {
  description = "Fewest nodes."
  type        = number
  default     = 3
}

variable "node_desired_size" {
  description = "Nodes at creation."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Most nodes."
  type        = number
  default     = 6
}

variable "kubernetes_namespace" {
  description = "Namespace the Helm release is installed in (the IRSA roles trust its service accounts)."
  type        = string
  default     = "optibid"
}

variable "kafka_service_account" {
  description = "Service account of the OptiBid roles, trusted by the Kafka (MSK IAM) role."
  type        = string
  default     = "optibid"
}

variable "backup_service_account" {
  description = "Service account of the backup job, trusted by the backup role."
  type        = string
  default     = "optibid-backup"
}

# Kafka

variable "kafka_version" {
  description = "Apache Kafka version of MSK (3.x or 4.x, as MSK spells it)."
  type        = string
  default     = "4.0.x.kraft"
}

variable "msk_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "msk_volume_size_gb" {
  description = "Storage of each broker, GiB."
  type        = number
  default     = 500
}

variable "msk_scram_secret_arns" {
  description = "Secrets Manager secrets (AmazonMSK_..., encrypted with the msk_kms_key_arn output's key) of the SCRAM users."
  type        = list(string)
  default     = []
}

variable "topic_prefix" {
  description = "OPTIBID_TOPIC_PREFIX of the release: the Kafka role may use topics and groups with this prefix only."
  type        = string
  default     = ""
}

# PostgreSQL

variable "external_database_host" {
  description = "Host of a PostgreSQL with TimescaleDB outside this configuration (a Timescale Cloud service); set, no RDS instance is made. Null: PostgreSQL on RDS, without TimescaleDB."
  type        = string
  default     = null
}

variable "external_database_port" {
  description = "Port of the external database."
  type        = number
  default     = 5432
}

variable "external_database_name" {
  description = "Database of the external database (tsdb on Timescale Cloud)."
  type        = string
  default     = "tsdb"
}

variable "postgres_engine_version" {
  description = "PostgreSQL version on RDS."
  type        = string
  default     = "17"
}

variable "postgres_parameter_group_family" {
  description = "RDS parameter group family of postgres_engine_version."
  type        = string
  default     = "postgres17"
}

variable "rds_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "rds_backup_retention_days" {
  description = "Days RDS keeps automated backups."
  type        = number
  default     = 14
}

# Redis

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_auth_token" {
  description = "AUTH token of Redis (16 to 128 characters); pass it as TF_VAR_redis_auth_token, never in a file."
  type        = string
  sensitive   = true
}

# Backups

variable "backup_bucket_name" {
  description = "Name of the backup bucket (unique across S3)."
  type        = string
}

variable "backup_object_lock_days" {
  description = "Object Lock retention of each backup, days (0: no Object Lock)."
  type        = number
  default     = 0
}
