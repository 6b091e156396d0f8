"""The projector: department topics in, the unified resident view (and its archive) in PostgreSQL out."""
