output "address" {
  description = "Host name of the instance (the host of OPTIBID_DATABASE_URL)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Database made at creation."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret RDS keeps the master user's password in."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "resource_id" {
  description = "Resource id of the instance (IAM database authentication policies name it: rds-db:connect)."
  value       = aws_db_instance.this.resource_id
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.this.id
}

output "kms_key_arn" {
  description = "Key of the storage, backups, Performance Insights, master secret and logs."
  value       = module.key.key_arn
}
