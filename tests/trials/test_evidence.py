"""The evidence bundle's checksums: ``evidence/SHA256SUMS`` in the format sha256sum checks, and every change,
removal or addition after the run found."""

import hashlib
import shutil
import subprocess

import pytest

from spectrial.trials.evidence import CHECKSUMS, check_bundle, read_checksums, sha256_file, write_checksums


def results_folder(root):
    (root / "evidence").mkdir(parents=True)
    (root / "results.csv").write_text("defect,auc\ninferior,0.8\n")
    (root / "figures").mkdir()
    (root / "figures" / "auc.png").write_bytes(bytes(range(256)) * 5000)  # over one 1 MiB read block
    (root / "units").mkdir()
    (root / "units" / "part.npz").write_bytes(b"store parts are checked by their own SHA-256")
    (root / ".staging").mkdir()
    (root / ".staging" / "x").write_text("hidden")
    return root


def test_checksums_list_the_bundles_files_with_their_sha256(tmp_path):
    root = results_folder(tmp_path / "out")
    write_checksums(root)
    listed = read_checksums(root)
    assert set(listed) == {"results.csv", "figures/auc.png"}  # not the store, hidden folders or the list
    assert listed["figures/auc.png"] == hashlib.sha256(bytes(range(256)) * 5000).hexdigest()
    assert sha256_file(root / "results.csv") == hashlib.sha256(b"defect,auc\ninferior,0.8\n").hexdigest()
    assert check_bundle(root) == []


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="GNU coreutils sha256sum is not installed")
def test_sha256sum_verifies_the_list(tmp_path):
    root = results_folder(tmp_path / "out")
    write_checksums(root)
    done = subprocess.run(["sha256sum", "--check", "--strict", CHECKSUMS], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_changed_missing_or_added_file_is_found(tmp_path):
    root = results_folder(tmp_path / "out")
    write_checksums(root)
    (root / "results.csv").write_text("defect,auc\ninferior,0.9\n")
    (root / "figures" / "auc.png").unlink()
    (root / "notes.txt").write_text("added")
    assert check_bundle(root) == ["figures/auc.png is listed but missing", "notes.txt was added after the run",
                                  "results.csv does not match its recorded SHA-256 (changed after the run)"]
    assert check_bundle(root, skip=("figures", "notes.txt")) == [
        "results.csv does not match its recorded SHA-256 (changed after the run)"]
    assert "SHA256SUMS is missing" in check_bundle(tmp_path / "elsewhere")[0]
