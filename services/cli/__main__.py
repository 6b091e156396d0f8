"""``python -m services.cli`` is the same as the ``renkou`` console script."""

from services.cli.main import app

app()
