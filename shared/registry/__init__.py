"""The model registry on Redis (versions, artifacts, the active pointer) and its model-events."""
