"""Labels against a model's classes: the spellings taken, and everything else refused."""

from __future__ import annotations

import math

import pytest

from shared.core.errors import BadMessage
from shared.models.targets import LabelCheck

BINARY = LabelCheck("classification", (0, 1))


@pytest.mark.parametrize(("given", "taken"), [(0, 0), (1, 1), ("1", 1), (" 0 ", 0), (1.0, 1)])
def test_a_binary_classifier_takes_its_classes_and_their_plain_spellings(
    given: object, taken: int
) -> None:
    result = BINARY(given)
    assert result == taken and type(result) is int


@pytest.mark.parametrize("given", ["True", "yes", True, False, 2.5, 7, "1.0", "", -1, "01x"])
def test_a_binary_classifier_refuses_anything_else_naming_its_classes(given: object) -> None:
    with pytest.raises(BadMessage, match=r"expected one of \[0, 1\]") as refused:
        BINARY(given)
    assert refused.value.field == "label"


def test_boolean_classes_take_true_and_false_in_any_case_but_not_numbers() -> None:
    check = LabelCheck("classification", (False, True))
    assert [check(v) for v in (True, "true", "FALSE", " True ")] == [True, True, False, True]
    for bad in (1, 0, "1", "yes"):
        with pytest.raises(BadMessage, match=r"expected one of \[false, true\]"):
            check(bad)


def test_string_classes_take_their_text_and_an_integer_that_is_their_text() -> None:
    check = LabelCheck("classification", ("churn", "stay", "3"))
    assert (check("churn"), check(3), check("3")) == ("churn", "3", "3")
    with pytest.raises(BadMessage, match=r"'Churn' is not a class"):
        check("Churn")


def test_before_the_classes_are_known_a_class_is_anything_but_a_fraction() -> None:
    check = LabelCheck("classification", None)
    assert (check("a"), check(2), check(2.0), check(True)) == ("a", 2, 2, True)
    with pytest.raises(BadMessage, match="expected a class"):
        check(0.5)


@pytest.mark.parametrize("given", ["2.5", True, math.inf, math.nan, None])
def test_a_regressor_takes_finite_numbers_only(given: object) -> None:
    check = LabelCheck("regression", None)
    assert check(2.5) == 2.5 and check(-3) == -3
    with pytest.raises(BadMessage, match="expected a"):
        check(given)
