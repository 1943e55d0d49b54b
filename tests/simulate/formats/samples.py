"""A small acquisition and volume the format tests write and read, and a check of one-line format errors."""

import numpy as np
import pytest

from spectrial.phantoms import Grid
from spectrial.phantoms.errors import FileFormatError
from spectrial.simulate import Projections, Protocol, Volume


PROJECTION_SUFFIXES = (".dcm", ".hs", ".h00")


def acquisition(**changes) -> Projections:
    protocol = Protocol(n_views=8, matrix=16, pixel_mm=19.2, **changes)
    rng = np.random.default_rng(3)
    shape = (8, 6, 16)
    counts = rng.poisson(40.0, shape).astype(np.float32)
    windows = {"lower": rng.poisson(4.0, shape).astype(np.float32), "upper": rng.poisson(1.0, shape).astype(np.float32)}
    return Projections(counts, protocol, 19.2, dose_fraction=0.25, windows=windows)


def volume() -> Volume:
    grid = Grid((6, 16, 16), 3.5, (-20.25, -30.0, 12.5))
    return Volume(np.random.default_rng(2).gamma(2.0, 1.5, grid.shape).astype(np.float32), grid)


def one_line_error(call, path, key):
    with pytest.raises(FileFormatError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and path.name in message and key.lower() in message.lower(), message
    return message
