"""Kafka, Redis and HTTP: the only modules that call kafka-python or redis-py, their errors translated."""
