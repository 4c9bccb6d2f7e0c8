"""``python -m services.notify``: the notifier alone, the same as `driftline notify`."""

from __future__ import annotations

import sys

from services.notify.main import add_command
from shared.runtime.entry import service_main

sys.exit(service_main("notify", add_command))
