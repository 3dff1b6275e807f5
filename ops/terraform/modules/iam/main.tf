# IAM roles for the cluster's service accounts (IRSA): a pod whose service account carries the
# annotation eks.amazonaws.com/role-arn = <role ARN> gets the role's credentials, and no other
# pod can.
#   kafka    the OptiBid roles: SASL/IAM on the MSK cluster, its topics, consumer groups and
#            transactional ids (under var.topic_prefix, OPTIBID_TOPIC_PREFIX)
#   backup   writes backups to the backup bucket (no delete: versions and Object Lock keep what
#            is written), and may log in to PostgreSQL as var.database_backup_user with an IAM
#            token when the database is on RDS

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.region
  issuer    = replace(var.oidc_issuer_url, "https://", "")

  service_accounts = {
    kafka  = var.kafka_service_account
    backup = var.backup_service_account
  }

  # arn:...:cluster/NAME/UUID -> the same cluster's topics, groups and transactional ids
  msk_cluster_path = replace(var.msk_cluster_arn, ":cluster/", ":%s/")
  msk_topics       = "${format(local.msk_cluster_path, "topic")}/${var.topic_prefix}*"
  msk_groups       = "${format(local.msk_cluster_path, "group")}/${var.topic_prefix}*"
  msk_transactions = "${format(local.msk_cluster_path, "transactional-id")}/*"
}

data "aws_iam_policy_document" "trust" {
  for_each = local.service_accounts

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.value}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.service_accounts

  name_prefix          = "${var.name}-${each.key}-"
  description          = "OptiBid ${each.key}: service account ${var.namespace}/${each.value}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "kafka" {
  statement {
    sid       = "Cluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.msk_cluster_arn]
  }

  statement {
    sid = "Topics"
    actions = [
      "kafka-cluster:CreateTopic",
      "kafka-cluster:DescribeTopic",
      "kafka-cluster:AlterTopic",
      "kafka-cluster:DescribeTopicDynamicConfiguration",
      "kafka-cluster:AlterTopicDynamicConfiguration",
      "kafka-cluster:ReadData",
      "kafka-cluster:WriteData",
    ]
    resources = [local.msk_topics]
  }

  statement {
    sid       = "ConsumerGroups"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = [local.msk_groups]
  }

  statement {
    sid       = "Transactions"
    actions   = ["kafka-cluster:DescribeTransactionalId", "kafka-cluster:AlterTransactionalId"]
    resources = [local.msk_transactions]
  }
}

resource "aws_iam_role_policy" "kafka" {
  name   = "msk-clients"
  role   = aws_iam_role.this["kafka"].id
  policy = data.aws_iam_policy_document.kafka.json
}

data "aws_iam_policy_document" "backup" {
  statement {
    sid       = "ListBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.backup_bucket_arn]
  }

  statement {
    sid = "WriteBackups"
    actions = [
      "s3:PutObject",
      "s3:GetObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.backup_bucket_arn}/*"]
  }

  statement {
    sid       = "BackupKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]
    resources = [var.backup_kms_key_arn]
  }

  dynamic "statement" {
    for_each = var.rds_resource_ids

    content {
      sid       = "DatabaseLogin${statement.key}"
      actions   = ["rds-db:connect"]
      resources = ["arn:${local.partition}:rds-db:${local.region}:${local.account}:dbuser:${statement.value}/${var.database_backup_user}"]
    }
  }
}

resource "aws_iam_role_policy" "backup" {
  name   = "write-backups"
  role   = aws_iam_role.this["backup"].id
  policy = data.aws_iam_policy_document.backup.json
}
