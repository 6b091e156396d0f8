"""Citizens' identity (CONTRACT §11): OpenID Connect ID tokens checked against the city's identity provider, and
a local identity provider for demos and tests."""
