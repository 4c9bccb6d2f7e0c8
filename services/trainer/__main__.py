"""``python -m services.trainer``: the trainer alone, the same as `driftline trainer`."""

from __future__ import annotations

import sys

from services.trainer.main import add_command
from shared.runtime.entry import service_main

sys.exit(service_main("trainer", add_command))
