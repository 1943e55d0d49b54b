"""The example observer-study script runs against the installed public API."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "observer_study.py"


def test_observer_study_example_prints_an_auc_with_ci_per_dose_and_method():
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--patients", "2", "--realizations", "4", "--matrix", "32"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # The intervals' coverage is tested in tests/trials/test_statistics.py; here the script must print them.
    assert len(re.findall(r"AUC \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", proc.stdout)) == 4
    assert proc.stdout.count("vs full dose") == 3
