"""driftline services: predictor, monitor and trainer, and the `driftline` CLI that runs them."""
