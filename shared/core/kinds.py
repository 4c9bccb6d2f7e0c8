"""Closed sets of names that several layers speak of: a model's task, a concept-drift detector.

>>> TASKS
('regression', 'classification')
>>> DETECTOR_NAMES[0]
'adwin'
"""

from __future__ import annotations

from typing import Literal, get_args

Task = Literal["regression", "classification"]
TASKS: tuple[Task, ...] = get_args(Task)

DetectorName = Literal["adwin", "adwin-default", "page-hinkley", "kswin", "ddm", "eddm"]
"""The concept-drift detectors of ``shared.stats.concept`` (``DRIFTLINE_MONITOR_DETECTOR``)."""
DETECTOR_NAMES: tuple[DetectorName, ...] = get_args(DetectorName)
