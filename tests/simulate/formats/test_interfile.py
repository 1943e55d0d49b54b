"""Interfile (STIR) acquisitions and volumes: the angle convention, truncated and resized data, missing keys."""

import shutil

from spectrial.simulate.formats import read_projections, read_volume, write_projections, write_volume

from tests.simulate.formats.samples import acquisition, one_line_error, volume


def test_interfile_states_stirs_angle_convention(tmp_path):
    from spectrial.phantoms.interfile import InterfileHeader

    written = acquisition()  # starts at -45 (45 deg RAO)
    stir = InterfileHeader(write_projections(written, tmp_path / "s.hs")[0])
    assert stir.number("start angle") == 135.0 and stir.text("direction of rotation") == "CW"  # SIMIND + 180


def test_truncated_and_resized_data_files(tmp_path):
    header = write_projections(acquisition(), tmp_path / "t.hs")[0]
    data = tmp_path / "t.s"
    data.write_bytes(data.read_bytes()[:-100])
    assert "truncated" in one_line_error(lambda: read_projections(header), header, "name of data file")
    text = (tmp_path / "t_lower.hs").read_text().replace("!matrix size [2] := 6", "!matrix size [2] := 7")
    (tmp_path / "t_lower.hs").write_text(text)
    (tmp_path / "t.s").unlink()
    shutil.copy(tmp_path / "t_upper.s", tmp_path / "t.s")
    lower = tmp_path / "t_lower.hs"
    one_line_error(lambda: read_projections(lower), lower, "name of data file")


def test_missing_header_key_and_missing_data_file(tmp_path):
    header = write_projections(acquisition(), tmp_path / "m.h00")[0]
    header.write_text(header.read_text().replace("!number of projections := 8\n", ""))
    one_line_error(lambda: read_projections(header), header, "number of projections")
    volume_header = write_volume(volume(), tmp_path / "v.hv")
    (tmp_path / "v.v").unlink()
    assert "does not exist" in one_line_error(lambda: read_volume(volume_header), volume_header, "name of data file")
