# Redis on ElastiCache: a replication group of a primary and replicas in other availability
# zones, automatic failover, TLS required, an AUTH token, data at rest and the slow and engine
# logs encrypted with a key of this module, and daily snapshots.

locals {
  log_types       = ["slow-log", "engine-log"]
  log_group_names = { for t in local.log_types : t => "/aws/elasticache/${var.name}/${t}" }
}

module "key" {
  source = "../kms"

  name            = "${var.name}-redis"
  description     = "${var.name}: Redis data at rest, snapshots and logs"
  log_group_names = values(local.log_group_names)
  tags            = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = local.log_group_names

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.key_arn
  tags              = var.tags
}

resource "aws_elasticache_subnet_group" "this" {
  name        = var.name
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "Redis of ${var.name}: port 6379 from the listed client groups"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-redis" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = var.client_security_group_ids

  security_group_id            = aws_security_group.this.id
  description                  = "Redis clients (${each.key})"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  tags                         = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "OptiBid cache and rate limits of ${var.name}"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  num_cache_clusters   = var.num_cache_clusters
  port                 = 6379

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this.id]

  automatic_failover_enabled = true
  multi_az_enabled           = true

  at_rest_encryption_enabled = true
  kms_key_id                 = module.key.key_arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = var.auth_token

  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true

  dynamic "log_delivery_configuration" {
    for_each = local.log_group_names

    content {
      log_type         = log_delivery_configuration.key
      destination_type = "cloudwatch-logs"
      destination      = aws_cloudwatch_log_group.this[log_delivery_configuration.key].name
      log_format       = "json"
    }
  }

  tags = var.tags
}
