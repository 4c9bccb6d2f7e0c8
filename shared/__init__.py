"""driftline's common package: only what two or more of predictor, monitor, trainer and CLI use.

Layers, each importing only those below it (``pyproject.toml``'s import contracts enforce this):

- ``infra``: local Kafka and Redis as background processes (`driftline infra`).
- ``runtime``: what every service main shares: flags, signals, gc settling, status publishing.
- ``registry``: the model registry on Redis and the model-events it announces.
- ``models`` and ``io`` (independent of each other): algorithms, training, signing, artifacts and
  serving; the Kafka, Redis and HTTP clients (the only modules that call kafka-python or redis-py).
- ``stats``: pure, doctested numerics: drift statistics, concept detectors, rolling metrics, gates.
- ``core``: messages, topics, errors, settings, clock, logs.
"""

from __future__ import annotations

__version__ = "0.1.0"
