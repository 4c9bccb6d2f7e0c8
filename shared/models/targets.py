"""Whether a label fits a model: one of a classifier's classes, or a regressor's finite number.

A label that fits no class of the model would be joined as a wrong answer: a false concept-drift
alert, a retrain on bad examples, and a River model that cannot learn it. So the monitor checks
every label before it joins it, and the trainer every example before it keeps it.

A few spellings are taken for a class where the model's class set leaves no doubt, and only then:

- a string that is a class's text: ``"1"`` for class ``1``, ``"yes"`` for class ``"yes"``;
- ``"true"`` / ``"false"`` (any case) for a model whose classes are booleans;
- a whole float for an integer class: ``1.0`` for ``1`` (JSON writers that print every number as a
  float);
- an integer for a class that is its text: ``1`` for class ``"1"``.

A boolean is never taken for an integer class, nor an integer for a boolean one (``true`` for a
0/1 model is refused: it is a sign that the producer writes another field).

>>> check = LabelCheck("classification", (0, 1))
>>> check(1), check("1"), check(1.0)
(1, 1, 1)
>>> check("yes")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
shared.core.errors.BadMessage: label: 'yes' is not a class of the model: expected one of [0, 1] ...
>>> LabelCheck("classification", (False, True))("True")
True
>>> LabelCheck("regression", None)(2.5)
2.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shared.core.errors import BadMessage
from shared.core.kinds import Task

_TRUTH = {"true": True, "false": False}


@dataclass(frozen=True)
class LabelCheck:
    """Checks labels against one model version's task and classes (None: not known yet).

    Calling it returns the label as the model's class (a spelling coerced as the module says) or
    raises :class:`BadMessage` naming what was expected."""

    task: Task
    classes: tuple[Any, ...] | None

    def __call__(self, value: Any) -> Any:
        if self.task == "regression":
            return _number(value)
        if self.classes is None:
            return _class_like(value)
        return _one_of(value, self.classes)


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadMessage("label", f"expected a number for a regression model, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadMessage("label", f"expected a finite number, got {value!r}")
    return value


def _class_like(value: Any) -> Any:
    """Before a classifier's classes are known: a class can be a bool, an int or a str."""
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise BadMessage(
            "label", f"expected a class (a bool, an integer or a string), got {value!r}"
        )
    return value


def _one_of(value: Any, classes: tuple[Any, ...]) -> Any:
    for cls in classes:
        if type(cls) is type(value) and cls == value:
            return cls
    kinds = {type(cls) for cls in classes}
    if isinstance(value, str):
        text = value.strip()
        if kinds == {bool} and text.lower() in _TRUTH:
            found: Any = _TRUTH[text.lower()]
            if found in classes:
                return found
        for cls in classes:
            if not isinstance(cls, bool) and isinstance(cls, int) and text == str(cls):
                return cls
    elif isinstance(value, float) and value.is_integer():
        for cls in classes:
            if not isinstance(cls, bool) and isinstance(cls, int) and cls == value:
                return cls
    elif isinstance(value, int) and not isinstance(value, bool):
        for cls in classes:
            if isinstance(cls, str) and cls == str(value):
                return cls
    shown = ", ".join(repr(cls) if isinstance(cls, str) else _json(cls) for cls in classes)
    raise BadMessage(
        "label",
        f"{value!r} is not a class of the model: expected one of [{shown}] "
        "(the label must be the class the model predicts, as it predicts it)",
    )


def _json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
