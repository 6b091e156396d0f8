"""renkou's side of Kafka: each service's principal and credentials, the ACLs that bind them, metadata."""
