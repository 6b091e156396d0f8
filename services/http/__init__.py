"""What every HTTP service shares: the error shape, request metrics, body limits, probes and the API docs."""
