output "cluster_arn" {
  description = "ARN of the cluster (IAM policies name its topics and groups after it)."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the cluster."
  value       = aws_msk_cluster.this.cluster_name
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap servers for SASL/IAM over TLS (port 9098): OPTIBID_KAFKA_BOOTSTRAP for clients with an IRSA role."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap servers for SASL/SCRAM over TLS (port 9096): OPTIBID_KAFKA_BOOTSTRAP for clients with a SCRAM user; empty when SCRAM is off."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "Key of the data at rest, the broker logs and the SCRAM secrets."
  value       = module.key.key_arn
}
