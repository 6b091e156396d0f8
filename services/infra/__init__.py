"""Local infrastructure without Docker: Kafka from Maven Central's jars, PostgreSQL from Debian's binaries."""
