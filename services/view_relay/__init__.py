"""The view relay: changed resident views from PostgreSQL's outbox to the compacted view topic."""
