"""``spectrial gate export``: a trial's phantom and protocol written as a GATE 10 simulation."""

import json

from spectrial.simulate.formats.gate import MANIFEST
from spectrial.trials.cli import main
from spectrial.trials.spec import load_trial

SMALL_TRIAL = """
name = "gate-small"
[protocol]
matrix = 32
pixel_mm = 12.8
[simulation]
axial_slices = 10
oversampling = 1
supersampling = 1
"""


def test_gate_export_writes_the_trial_acquisition_and_refuses_to_overwrite(tmp_path, capsys):
    trial = tmp_path / "trial.toml"
    trial.write_text(SMALL_TRIAL)
    out = tmp_path / "gate"
    assert main(["gate", "export", str(trial), "--out", str(out), "--no-defect", "--patient", "1"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    protocol = load_trial(trial).protocol
    assert manifest["protocol"] == protocol.as_record()
    assert sum(len(h["views"]) for h in manifest["heads"]) == protocol.n_views
    assert (out / "run_gate.py").is_file()
    assert main(["gate", "export", str(trial), "--out", str(out)]) == 2
    assert "nothing there is overwritten" in capsys.readouterr().err
    assert main(["gate", "export", str(trial), "--out", str(tmp_path / "other"), "--patient", "99"]) == 2
