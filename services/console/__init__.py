"""The web console (CONTRACT §14): operators, auditors and citizens, at ``http://127.0.0.1:8004/``."""
