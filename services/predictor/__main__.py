"""``python -m services.predictor``: the predictor alone, the same as `driftline predictor`."""

from __future__ import annotations

import sys

from services.predictor.main import add_command
from shared.runtime.entry import service_main

sys.exit(service_main("predictor", add_command))
