"""The gateway: departments publish events over HTTP (CONTRACT §7); ``create_app`` in ``app``."""
