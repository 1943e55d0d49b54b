"""GATE projection stacks (MetaImage), read window by window."""

import numpy as np
import pytest

from spectrial.phantoms.errors import FileFormatError
from spectrial.simulate import Protocol
from spectrial.simulate.formats import read_projections


def test_gate_stack_is_read_window_by_window(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    protocol = Protocol(n_views=4, matrix=8, pixel_mm=4.0, heads=1)
    stack = np.zeros((8, 5, 8), np.float32)  # 2 windows x 4 views
    for k in range(8):
        stack[k, 0, 0] = k + 1  # first row of each slice
    image = sitk.GetImageFromArray(stack)
    image.SetSpacing((4.0, 4.0, 1.0))
    sitk.WriteImage(image, str(tmp_path / "gate.mhd"))
    read = read_projections(tmp_path / "gate.mhd", protocol=protocol, gate_windows=("photopeak", "lower"))
    assert [float(v[-1, 0]) for v in read.counts] == [1, 2, 3, 4]  # first row -> most superior z
    assert [float(v[-1, 0]) for v in read.windows["lower"]] == [5, 6, 7, 8]
    with pytest.raises(FileFormatError, match="DimSize"):
        read_projections(tmp_path / "gate.mhd", protocol=protocol, gate_windows=("photopeak",))
