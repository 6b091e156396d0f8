"""The query API (CONTRACT §7): purpose-bound grants, audited reads, bitemporal views, population statistics.

``create_app(settings)`` in ``app`` builds the FastAPI application; ``python -m services.query_api`` serves it.
"""
