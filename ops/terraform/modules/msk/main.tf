# An MSK cluster of var.brokers_per_az brokers in each private subnet: clients authenticate with
# SASL (IAM, and SCRAM unless turned off) over TLS only, brokers talk TLS among themselves, data
# at rest is encrypted with a key of this module, broker logs go to an encrypted log group and
# Prometheus can scrape the JMX and node exporters. Topics are not made here: the topic catalog
# (schemas/catalog.py) is their source of truth and `optibid topics create` applies it.

locals {
  log_group_name     = "/aws/msk/${var.name}/brokers"
  broker_count       = var.brokers_per_az * length(var.subnet_ids)
  replication_factor = min(3, local.broker_count)

  # ports of the listeners the cluster opens: 9096 SASL/SCRAM, 9098 SASL/IAM (both over TLS)
  client_ports = var.scram_enabled ? [9096, 9098] : [9098]
  client_rules = merge([
    for source_name, group_id in var.client_security_group_ids : {
      for port in local.client_ports : "${source_name}-${port}" => { group_id = group_id, port = port }
    }
  ]...)
}

module "key" {
  source = "../kms"

  name            = "${var.name}-msk"
  description     = "${var.name}: MSK data at rest, broker logs and SCRAM secrets"
  log_group_names = [local.log_group_name]
  tags            = var.tags
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.key_arn
  tags              = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-msk-"
  description = "Kafka brokers of ${var.name}: SASL over TLS from the listed client groups"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-msk" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  for_each = local.client_rules

  security_group_id            = aws_security_group.this.id
  description                  = "Kafka clients (${each.key})"
  referenced_security_group_id = each.value.group_id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  tags                         = var.tags
}

# Topics are created by `optibid topics create`, never on first use. Replication follows the
# broker count (at most 3), and a write needs all replicas but one.
resource "aws_msk_configuration" "this" {
  name           = var.name
  kafka_versions = [var.kafka_version]
  description    = "OptiBid brokers of ${var.name}"

  server_properties = <<-EOT
    auto.create.topics.enable=false
    default.replication.factor=${local.replication_factor}
    min.insync.replicas=${max(1, local.replication_factor - 1)}
    num.partitions=6
    unclean.leader.election.enable=false
  EOT

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = local.broker_count
  enhanced_monitoring    = var.enhanced_monitoring

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.volume_size_gb
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = false

    sasl {
      iam   = true
      scram = var.scram_enabled
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = module.key.key_arn

    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }

      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }

  tags = var.tags
}

# SCRAM users are Secrets Manager secrets named AmazonMSK_... and encrypted with a customer
# managed key (this module's, see the kms_key_arn output); they are made outside Terraform so no
# password lands in its state.
resource "aws_msk_scram_secret_association" "this" {
  count = var.scram_enabled && length(var.scram_secret_arns) > 0 ? 1 : 0

  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = var.scram_secret_arns
}
