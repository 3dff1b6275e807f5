# What the Helm values (ops/helm/optibid/values.yaml) and the release's Secret take.

output "kafka_bootstrap_sasl_iam" {
  description = "OPTIBID_KAFKA_BOOTSTRAP for SASL/IAM over TLS (pods with the kafka_role_arn role)."
  value       = module.msk.bootstrap_brokers_sasl_iam
}

output "kafka_bootstrap_sasl_scram" {
  description = "OPTIBID_KAFKA_BOOTSTRAP for SASL/SCRAM over TLS (pods with a SCRAM user)."
  value       = module.msk.bootstrap_brokers_sasl_scram
}

output "msk_cluster_arn" {
  description = "ARN of the MSK cluster."
  value       = module.msk.cluster_arn
}

output "msk_kms_key_arn" {
  description = "Key the SCRAM users' secrets must be encrypted with."
  value       = module.msk.kms_key_arn
}

output "database_host" {
  description = "Host of OPTIBID_DATABASE_URL: the RDS instance, or the external (Timescale Cloud) host."
  value       = local.use_rds ? module.rds[0].address : var.external_database_host
}

output "database_port" {
  description = "Port of OPTIBID_DATABASE_URL."
  value       = local.use_rds ? module.rds[0].port : var.external_database_port
}

output "database_name" {
  description = "Database of OPTIBID_DATABASE_URL."
  value       = local.use_rds ? module.rds[0].database_name : var.external_database_name
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret with the RDS master user's password (null with an external database)."
  value       = local.use_rds ? module.rds[0].master_user_secret_arn : null
}

output "redis_primary_endpoint" {
  description = "Host of OPTIBID_REDIS_URL (rediss://:<auth token>@<host>:<port>/0)."
  value       = module.elasticache.primary_endpoint_address
}

output "redis_port" {
  description = "Port of OPTIBID_REDIS_URL."
  value       = module.elasticache.port
}

output "backup_bucket_name" {
  description = "Bucket the backup job writes to."
  value       = module.s3_backups.bucket_name
}

output "backup_kms_key_arn" {
  description = "Key of the backup bucket."
  value       = module.s3_backups.kms_key_arn
}

output "kafka_role_arn" {
  description = "IRSA role of the OptiBid roles' service account (eks.amazonaws.com/role-arn)."
  value       = module.iam.kafka_role_arn
}

output "backup_role_arn" {
  description = "IRSA role of the backup job's service account (eks.amazonaws.com/role-arn)."
  value       = module.iam.backup_role_arn
}

output "eks_cluster_name" {
  description = "EKS cluster to install the chart on (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "eks_cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "nat_public_ips" {
  description = "Addresses the cluster reaches the internet from (allow-lists of Timescale Cloud and the ISOs' APIs)."
  value       = module.vpc.nat_public_ips
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC: the cidrs of the kafka and redis egress destinations of the chart's networkPolicy."
  value       = module.vpc.vpc_cidr_block
}

output "helm_settings" {
  description = "The entries of the Helm values' settings that Terraform knows (values-aws.yaml uses SASL/SCRAM); OPTIBID_DATABASE_URL and OPTIBID_REDIS_URL hold passwords and go in the release's Secret."
  value = {
    OPTIBID_KAFKA_BOOTSTRAP = module.msk.bootstrap_brokers_sasl_scram
  }
}
