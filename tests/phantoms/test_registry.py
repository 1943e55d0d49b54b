"""One registry pattern for every kind of stage: names, tables, parameters checked, unknowns listed."""

from dataclasses import dataclass
from typing import ClassVar

import pytest

from spectrial.phantoms.errors import InvalidParameterError, InvalidTypeError
from spectrial.phantoms.registry import Registry, stage_record


@dataclass(frozen=True)
class Lens:
    """A toy stage with one parameter."""

    name: ClassVar[str] = "lens"
    focal_mm: float = 50.0

    def __post_init__(self):
        if self.focal_mm <= 0:
            raise InvalidParameterError(f"focal_mm={self.focal_mm!r} is not allowed: expected a positive length")


def test_a_stage_is_created_from_a_name_or_a_table_and_written_back():
    registry = Registry("optic")
    registry.register(Lens)
    assert registry.create("lens") == Lens()
    made = registry.create({"name": "lens", "focal_mm": 35}, "camera.optic")
    assert made == Lens(35.0) and isinstance(made.focal_mm, float)  # an integer is accepted for a float
    assert stage_record(made) == {"name": "lens", "focal_mm": 35.0}
    assert registry.create(stage_record(made)) == made
    assert registry.describe() == ["lens: A toy stage with one parameter. [focal_mm=50.0]"]


def test_bad_stages_are_refused_with_the_path_and_what_is_allowed():
    registry = Registry("optic")
    registry.register(Lens)
    with pytest.raises(InvalidParameterError, match=r"camera.optic: optic 'prism' is unknown: expected one of \['lens'\]"):
        registry.create("prism", "camera.optic")
    with pytest.raises(InvalidParameterError, match="optic 'lens' has no parameter 'zoom': expected \\['focal_mm'\\]"):
        registry.create({"name": "lens", "zoom": 2})
    with pytest.raises(InvalidTypeError, match="camera.optic.focal_mm: expected a number"):
        registry.create({"name": "lens", "focal_mm": "long"}, "camera.optic")
    with pytest.raises(InvalidParameterError, match="focal_mm=-1.0"):  # the stage's own check
        registry.create({"name": "lens", "focal_mm": -1})
    with pytest.raises(InvalidParameterError, match="expected a table with a 'name' key"):
        registry.create({"focal_mm": 3})


def test_a_name_is_registered_once_and_a_temporary_stage_leaves_no_trace():
    registry = Registry("optic")

    @dataclass(frozen=True)
    class OtherLens:
        name: ClassVar[str] = "lens"

    with registry.registered(Lens):
        with pytest.raises(InvalidParameterError, match="already registered"):
            registry.register(OtherLens)
        assert "lens" in registry
    assert registry.names() == []
    with pytest.raises(InvalidTypeError, match="dataclass"):
        registry.register(type("Plain", (), {"name": "plain"}))
