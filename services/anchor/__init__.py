"""Signed anchors of the hash chains (CONTRACT §10, "tamper evidence that survives a careful rewrite").

The hash chains of the event archive and the access log prove that rows were not changed *unless every later
link and the head were rewritten too* — which anyone with write access to PostgreSQL can do. An anchor pins
every chain's head, with its position, outside the database: the projector signs a digest of them with an
Ed25519 key kept in a file (never in PostgreSQL) and publishes it to ``population.audit_anchor.v1``;
``renkou audit verify`` checks every chain against the latest anchor.

``record`` is the anchor's format (pure); ``keys`` the signing key's file; ``builder`` reads the chain heads
and the anchored state in PostgreSQL; ``topic`` publishes and reads anchors on Kafka; ``service`` puts them
together for the projector, ``renkou swap`` and ``renkou audit anchor``.
"""
