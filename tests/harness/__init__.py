"""Helpers that tests and benchmarks share: real deployments, service processes, fixtures."""
