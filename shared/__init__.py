"""driftline's common package: messages, settings, Kafka and Redis I/O, local infrastructure.

Everything here is plain, testable Python. The services in ``services/`` are thin wrappers that wire
these pieces together in their ``main()``.
"""

from __future__ import annotations

__version__ = "0.1.0"
