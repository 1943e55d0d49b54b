"""Interfile 3.3 headers (Todd-Pokropek et al. 1992) as STIR and SIMIND write them: keys, SIMIND's comment keys,
typed look-ups, raw data in either byte order, and images that round-trip exactly."""

import numpy as np
import pytest

from spectrial.phantoms import Grid, InvalidParameterError
from spectrial.phantoms.errors import FileFormatError
from spectrial.phantoms.interfile import InterfileHeader, header_text, normalize_key, read_image_hv, write_image_hv


def test_keys_match_without_their_mark_case_and_blanks():
    assert normalize_key("!Matrix Size [1]") == "matrix size[1]"
    assert normalize_key("  scaling   factor (mm/pixel)  [ 2 ] ") == "scaling factor (mm/pixel)[2]"


def test_header_values_lists_and_simind_comment_keys(tmp_path):
    path = tmp_path / "a.h00"
    path.write_text("!INTERFILE :=\n!Matrix Size [1] := 64\nstart angle := 0\nstart angle := 90\n"
                    ";# Radius := 15.000\nradius := \nangles := {0, 22.5, 45}\n!number of projections := 1.5\n")
    header = InterfileHeader(path)
    assert header.number("matrix size[1]", kind=int) == 64
    assert header.number("start angle") == 0.0  # a repeated key: the first one counts, as SIMIND writes
    assert header.number("radius") == 15.0  # empty key: the SIMIND comment gives the value
    np.testing.assert_array_equal(header.numbers("angles"), [0.0, 22.5, 45.0])
    assert header.text("missing key", "default") == "default"
    with pytest.raises(FileFormatError, match="a.h00: number of projections: '1.5' is not a whole number"):
        header.number("number of projections", kind=int)
    with pytest.raises(FileFormatError, match="a.h00: patient name: missing"):
        header.text("patient name")
    (tmp_path / "b.hs").write_text("not a header\n")
    with pytest.raises(FileFormatError, match="INTERFILE"):
        InterfileHeader(tmp_path / "b.hs")


@pytest.mark.parametrize("order, code", [("LITTLEENDIAN", "<"), ("BIGENDIAN", ">")])
def test_raw_data_is_read_in_the_byte_order_the_header_states(tmp_path, order, code):
    values = np.arange(6, dtype=np.float32).reshape(2, 3) * 1.5
    values.astype(f"{code}f4").tofile(tmp_path / "d.v")
    text = header_text([("name of data file", "d.v"), ("imagedata byte order", order), ("!number format", "float"),
                        ("!number of bytes per pixel", 4)])
    (tmp_path / "d.hv").write_text(text)
    np.testing.assert_array_equal(InterfileHeader(tmp_path / "d.hv").read_data((2, 3), what="test"), values)
    with pytest.raises(FileFormatError, match="name of data file"):
        InterfileHeader(tmp_path / "d.hv").read_data((2, 4), what="test")


def test_header_text_writes_every_digit_so_numbers_read_back_exactly(tmp_path):
    (tmp_path / "n.hv").write_text(header_text([("pixel", 0.1 + 0.2), ("list", [1.0, 2.5, 1e-7])]))
    header = InterfileHeader(tmp_path / "n.hv")
    assert header.number("pixel") == 0.1 + 0.2
    np.testing.assert_array_equal(header.numbers("list"), [1.0, 2.5, 1e-7])


def test_an_image_round_trips_exactly_with_its_grid_and_is_never_overwritten(tmp_path):
    grid = Grid((3, 4, 5), 2.5, (-7.0, 1.5, 30.0))
    image = np.random.default_rng(0).random(grid.shape).astype(np.float32)
    path = write_image_hv(image, grid, tmp_path / "i.hv", units="kBq/mL")
    back, back_grid = read_image_hv(path)
    np.testing.assert_array_equal(back, image)
    assert back_grid == grid
    header = InterfileHeader(path)  # x fastest: matrix size [1] is x
    assert [header.number(f"matrix size [{i}]", kind=int) for i in (1, 2, 3)] == [5, 4, 3]
    with pytest.raises(InvalidParameterError, match="already exists"):
        write_image_hv(image, grid, path)
    with pytest.raises(InvalidParameterError, match=r"\.hv"):
        write_image_hv(image, grid, tmp_path / "i.img")
