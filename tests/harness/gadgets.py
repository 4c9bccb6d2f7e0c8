"""Pickles that run code when unpickled, as an attacker with write access to Redis would plant
them: each leaves a marker file, so a test can prove it never ran."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class NumpyGadget:
    """``numpy.testing``'s ``runstring`` is ``exec``: the gadget the old module allow-list let in."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy.testing._private.utils import runstring  # noqa: PLC0415

        return (runstring, (f"open({str(self.marker)!r}, 'w').close()", {}))


class SystemGadget:
    """The classic: ``os.system`` as the reduce callable."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


GADGETS = (NumpyGadget, SystemGadget)
