"""``python -m services.cli``: the `driftline` command without its installed entry point."""

from __future__ import annotations

import sys

from services.cli.main import main

sys.exit(main())
