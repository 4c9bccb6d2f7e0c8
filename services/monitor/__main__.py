"""``python -m services.monitor``: the monitor alone, the same as `driftline monitor`."""

from __future__ import annotations

import sys

from services.monitor.main import add_command
from shared.runtime.entry import service_main

sys.exit(service_main("monitor", add_command))
