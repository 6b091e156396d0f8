"""PostgreSQL access shared by the services: engines and schema migrations."""
