variable "name" {
  description = "Name of the VPC, and the prefix of everything this module names."
  type        = string
}

variable "cidr_block" {
  description = "IPv4 range of the VPC; a /16 leaves each private subnet a /18 (16k addresses, pods included)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr_block))
    error_message = "cidr_block must be an IPv4 CIDR block."
  }
}

variable "availability_zones" {
  description = "Availability zones spanned (2 or 3, of the provider's region): one private and one public subnet in each."
  type        = list(string)

  validation {
    condition     = contains([2, 3], length(var.availability_zones)) && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must name 2 or 3 distinct zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper; the zone it is in becomes a single point of failure for outbound traffic)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days the flow logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
