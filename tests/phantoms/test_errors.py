"""The project's error types and the checks that raise them."""

import math
from dataclasses import dataclass

import pytest

from spectrial.phantoms.errors import (FileFormatError, InvalidParameterError, InvalidTypeError, SpectrialError,
                                       check_fields, check_value, refuse_existing, require)


def test_errors_are_the_project_type_and_the_built_in_one():
    assert issubclass(InvalidParameterError, SpectrialError) and issubclass(InvalidParameterError, ValueError)
    assert issubclass(InvalidTypeError, SpectrialError) and issubclass(InvalidTypeError, TypeError)
    assert issubclass(FileFormatError, InvalidParameterError)
    error = FileFormatError("/data/a.hs", "matrix size [1]", "missing")
    assert str(error) == "/data/a.hs: matrix size [1]: missing" and error.key == "matrix size [1]"


def test_require_names_the_parameter_the_value_and_what_is_allowed():
    require(True, "severity", 0.5, "a fraction")
    with pytest.raises(InvalidParameterError) as caught:
        require(False, "severity", 1.5, "a fraction in (0, 1]")
    assert str(caught.value) == "severity=1.5 is not allowed: expected a fraction in (0, 1]"


@pytest.mark.parametrize("value, tp", [(True, float), ("1", float), (math.nan, float), (math.inf, float),
                                       (1.0, int), (True, int), (1, bool), (3, str), ("ab", tuple[int, int]),
                                       ([1, 2, 3], tuple[int, int]), ([1, "x"], tuple[int, ...])])
def test_check_value_refuses_what_is_not_the_declared_type(value, tp):
    with pytest.raises(InvalidTypeError, match="trial.key"):
        check_value(value, tp, "trial.key")


def test_check_value_accepts_and_converts_only_integers_to_floats():
    assert check_value(3, float, "x") == 3.0 and isinstance(check_value(3, float, "x"), float)
    assert check_value([1, 2], tuple[int, ...], "x") == (1, 2)
    assert check_value([1, 2.5], tuple[int, float], "x") == (1, 2.5)
    assert check_value(False, bool, "x") is False


def test_check_fields_names_the_key_by_its_path():
    @dataclass
    class Section:
        size: int = 1
        scale: float = 1.0

    assert check_fields(Section, {"size": 2, "scale": 3, "other": "kept"}) == {"size": 2, "scale": 3.0,
                                                                                "other": "kept"}
    with pytest.raises(InvalidTypeError, match=r"observer\.size: expected an integer, got 2.5"):
        check_fields(Section, {"size": 2.5}, "observer")


def test_refuse_existing_never_lets_a_file_be_overwritten(tmp_path):
    refuse_existing(tmp_path / "new.txt")
    (tmp_path / "mine.txt").write_text("mine")
    with pytest.raises(InvalidParameterError, match="already exists"):
        refuse_existing(tmp_path / "mine.txt")
    assert (tmp_path / "mine.txt").read_text() == "mine"
