output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "availability_zones" {
  description = "The availability zones of the subnets, in subnet order."
  value       = local.azs
}

output "private_subnet_ids" {
  description = "Private subnets, one per availability zone (nodes, brokers, database, cache)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets, one per availability zone (NAT gateways, internet-facing load balancers)."
  value       = aws_subnet.public[*].id
}

output "nat_public_ips" {
  description = "Public addresses the private subnets reach the internet from (for allow-lists of external services, such as Timescale Cloud or the ISOs' APIs)."
  value       = aws_eip.nat[*].public_ip
}
