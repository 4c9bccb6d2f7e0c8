"""What a model predicts: the closed set of tasks every layer speaks of.

>>> TASKS
('regression', 'classification')
"""

from __future__ import annotations

from typing import Literal, get_args

Task = Literal["regression", "classification"]
TASKS: tuple[Task, ...] = get_args(Task)
