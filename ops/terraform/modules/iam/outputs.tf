output "kafka_role_arn" {
  description = "Role of the OptiBid roles' service account (annotation eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.this["kafka"].arn
}

output "backup_role_arn" {
  description = "Role of the backup job's service account (annotation eks.amazonaws.com/role-arn)."
  value       = aws_iam_role.this["backup"].arn
}

output "service_accounts" {
  description = "Namespace/name of the service account each role trusts, by role."
  value       = { for role, account in local.service_accounts : role => "${var.namespace}/${account}" }
}
