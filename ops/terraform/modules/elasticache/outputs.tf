output "primary_endpoint_address" {
  description = "Host name of the primary (the host of OPTIBID_REDIS_URL, rediss://)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint_address" {
  description = "Host name spreading reads over the replicas."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "port" {
  description = "Port of the cache."
  value       = aws_elasticache_replication_group.this.port
}

output "security_group_id" {
  description = "Security group of the cache."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "Key of the data at rest, snapshots and logs."
  value       = module.key.key_arn
}
