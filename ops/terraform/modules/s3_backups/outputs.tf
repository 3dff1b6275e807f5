output "bucket_name" {
  description = "Name of the backup bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the backup bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "Key the backups are encrypted with (writers need kms:GenerateDataKey on it)."
  value       = module.key.key_arn
}

output "access_log_bucket_name" {
  description = "Name of the bucket holding the backup bucket's server access logs."
  value       = aws_s3_bucket.logs.id
}
