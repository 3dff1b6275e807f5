variable "name" {
  description = "Name of the cluster, and the prefix of everything this module names."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane (EKS standard support)."
  type        = string
  default     = "1.33"
}

variable "subnet_ids" {
  description = "Private subnets of the control plane's interfaces and of the nodes (two availability zones or more)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  description = "Open the Kubernetes API endpoint to the internet, from public_access_cidrs only; off, it is reachable inside the VPC only."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "Ranges allowed to the public API endpoint when endpoint_public_access is on (never 0.0.0.0/0)."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "public_access_cidrs must list the ranges of operators, not the whole internet."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles or users given cluster-admin access (EKS access entries), besides the identity that creates the cluster."
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "node_min_size" {
  description = "Fewest nodes of the node group."
  type        = number
  default     = 3
}

variable "node_desired_size" {
  description = "Nodes the node group starts with (changes afterwards are left to an autoscaler)."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Most nodes of the node group."
  type        = number
  default     = 6
}

variable "node_disk_size_gb" {
  description = "Root volume of each node, GiB (images, and the emptyDir state of the stateful roles' RocksDB tables)."
  type        = number
  default     = 100
}

variable "log_retention_days" {
  description = "Days the control-plane logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags of every resource."
  type        = map(string)
  default     = {}
}
