variable "name" {
  description = "Alias of the key, without the alias/ prefix."
  type        = string
}

variable "description" {
  description = "What the key encrypts (shown in the KMS console)."
  type        = string
}

variable "log_group_names" {
  description = "CloudWatch log groups that CloudWatch Logs may encrypt with this key."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Days a scheduled deletion of the key waits (7 to 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags of the key."
  type        = map(string)
  default     = {}
}
