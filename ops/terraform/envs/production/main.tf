# Production: the VPC, the EKS cluster the Helm chart (ops/helm/optibid) is installed on, MSK,
# PostgreSQL on RDS (or Timescale Cloud, see var.external_database_host), ElastiCache Redis, the
# backup bucket and the IAM roles of the chart's service accounts. The schema registry runs in
# the cluster (OPTIBID_REGISTRY_URL) and the topics come from the topic catalog through
# `optibid topics create`; neither is made here.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "optibid"
      Environment = "production"
      ManagedBy   = "terraform"
    })
  }
}

locals {
  use_rds = var.external_database_host == null
  # the nodes (and so every OptiBid pod) are in the cluster's security group
  clients = { eks = module.eks.cluster_security_group_id }
}

module "vpc" {
  source = "../../modules/vpc"

  name               = var.name
  cidr_block         = var.vpc_cidr_block
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
}

module "eks" {
  source = "../../modules/eks"

  name                   = var.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.vpc.private_subnet_ids
  endpoint_public_access = var.eks_endpoint_public_access
  public_access_cidrs    = var.eks_public_access_cidrs
  admin_principal_arns   = var.eks_admin_principal_arns
  node_instance_types    = var.node_instance_types
  node_min_size          = var.node_min_size
  node_desired_size      = var.node_desired_size
  node_max_size          = var.node_max_size
}

module "msk" {
  source = "../../modules/msk"

  name                      = var.name
  vpc_id                    = module.vpc.vpc_id
  subnet_ids                = module.vpc.private_subnet_ids
  client_security_group_ids = local.clients
  kafka_version             = var.kafka_version
  instance_type             = var.msk_instance_type
  volume_size_gb            = var.msk_volume_size_gb
  scram_secret_arns         = var.msk_scram_secret_arns
}

module "rds" {
  source = "../../modules/rds"
  count  = local.use_rds ? 1 : 0

  name                      = var.name
  vpc_id                    = module.vpc.vpc_id
  subnet_ids                = module.vpc.private_subnet_ids
  client_security_group_ids = local.clients
  engine_version            = var.postgres_engine_version
  parameter_group_family    = var.postgres_parameter_group_family
  instance_class            = var.rds_instance_class
  backup_retention_days     = var.rds_backup_retention_days
}

module "elasticache" {
  source = "../../modules/elasticache"

  name                      = var.name
  vpc_id                    = module.vpc.vpc_id
  subnet_ids                = module.vpc.private_subnet_ids
  client_security_group_ids = local.clients
  node_type                 = var.redis_node_type
  auth_token                = var.redis_auth_token
}

module "s3_backups" {
  source = "../../modules/s3_backups"

  bucket_name      = var.backup_bucket_name
  object_lock_days = var.backup_object_lock_days
}

module "iam" {
  source = "../../modules/iam"

  name                   = var.name
  oidc_provider_arn      = module.eks.oidc_provider_arn
  oidc_issuer_url        = module.eks.oidc_issuer_url
  namespace              = var.kubernetes_namespace
  kafka_service_account  = var.kafka_service_account
  backup_service_account = var.backup_service_account
  msk_cluster_arn        = module.msk.cluster_arn
  topic_prefix           = var.topic_prefix
  backup_bucket_arn      = module.s3_backups.bucket_arn
  backup_kms_key_arn     = module.s3_backups.kms_key_arn
  rds_resource_ids       = module.rds[*].resource_id
}
