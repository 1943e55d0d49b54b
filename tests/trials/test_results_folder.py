"""The results folder: names are plain file names, publishing replaces and removes only what a trial
wrote, a folder of another trial or holding foreign files is refused unless forced, and what a run
killed while publishing left is finished and cleaned by the next one."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from spectrial.phantoms import InvalidParameterError
from spectrial.trials import SpecError, parse_trial
from spectrial.trials import results_folder as rf
from spectrial.trials.evidence import CHECKSUMS


@pytest.mark.parametrize("name", [".", "..", "../outside", "a/b", "a\\b", "", ".hidden", "tab\there", "nul\0",
                                  "-rf", "x" * 101])
def test_names_that_are_not_plain_file_names_are_refused(name):
    with pytest.raises(SpecError, match="name=.* plain file name"):
        parse_trial(f"name = {json.dumps(name)}")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def bundle(folder: Path, names: list[str]) -> None:
    """An evidence checksum list over ``names`` (as a run writes it, ``sha256sum -c`` format)."""
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names]
    write(folder / CHECKSUMS, "".join(lines))


def finished_folder(out: Path) -> None:
    """A results folder a finished run left: its files listed in its bundle, and a store."""
    for name in ("results.csv", "examples.npz", "figures/old.png", "evidence/manifest.json"):
        write(out / name, f"old {name}")
    bundle(out, ["results.csv", "examples.npz", "figures/old.png", "evidence/manifest.json"])
    write(out / "units" / "STORE", "spectrial-store-1")


def staged(out: Path, key: str) -> Path:
    stage = rf.new_staging(out, key)
    for name in ("results.csv", "figures/new.png", "evidence/manifest.json"):
        write(stage / name, f"new {name}")
    bundle(stage, ["results.csv", "figures/new.png", "evidence/manifest.json"])
    return stage


def test_publishing_replaces_and_removes_only_the_files_the_trial_wrote(tmp_path):
    out = tmp_path / "out"
    finished_folder(out)
    users = [write(out / "notes.txt", "mine"), write(out / "my_plots" / "a.png", "mine"),
             write(out / "figures" / "mine.png", "mine"), write(out / "evidence" / "review.txt", "mine")]
    with pytest.raises(InvalidParameterError, match="did not write .*evidence/review.txt, figures/mine.png, my_plots/"):
        rf.check_folder(out, name="t", spec_key="k")
    rf.check_folder(out, name="t", spec_key="k", force=True)
    rf.publish(staged(out, "k"), out, "k")
    assert (out / "results.csv").read_text() == "new results.csv"
    assert (out / "figures" / "new.png").exists() and (out / "evidence" / "manifest.json").read_text().startswith("new")
    assert not (out / "examples.npz").exists() and not (out / "figures" / "old.png").exists()  # the old run's own
    assert all(path.read_text() == "mine" for path in users)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    assert rf.listed_names(out) == {"results.csv", "figures/new.png", "evidence/manifest.json", CHECKSUMS}


def test_a_publication_killed_midway_is_owned_and_cleaned_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    finished_folder(out)
    killed = staged(out, "k")
    names = rf.staged_names(killed)
    rf._write_record(killed, {"spec_key": "k", "publish": names, "replace": sorted(rf.owned_names(out))})
    os.unlink(out / CHECKSUMS)  # killed after the old list went and two files were moved in
    for name in names[:2]:
        os.replace(killed / name, out / name)
    assert not (out / CHECKSUMS).exists()  # the folder does not look complete
    rf.check_folder(out, name="t", spec_key="k")  # everything in it is the trial's own
    rf.publish(staged(out, "k"), out, "k")
    assert not killed.exists() and not (out / "examples.npz").exists()
    assert sorted(p.name for p in out.iterdir()) == ["evidence", "figures", "results.csv", "units"]


def test_a_folder_of_another_trial_specification_is_refused_unless_forced(tmp_path):
    out = tmp_path / "out"
    finished_folder(out)
    write(out / "units" / "TRIAL", json.dumps({"name": "other", "spec_key": "a" * 64}))
    with pytest.raises(InvalidParameterError, match="another trial specification \\('other', key aaaaaaaaaaaa\\)"):
        rf.check_folder(out, name="t", spec_key="b" * 64)
    rf.check_folder(out, name="t", spec_key="a" * 64)
    rf.check_folder(out, name="t", spec_key="b" * 64, force=True)


@pytest.mark.parametrize("occupy", ["results.csv/", "figures", "evidence", "units"])
def test_what_sits_where_a_trial_writes_is_never_replaced_even_when_forced(tmp_path, occupy):
    out, elsewhere = tmp_path / "out", write(tmp_path / "elsewhere" / "data.txt", "keep")
    if occupy.endswith("/"):
        write(out / occupy / "data.txt", "mine")
    else:
        out.mkdir()
        (out / occupy).symlink_to(elsewhere.parent, target_is_directory=True)
    with pytest.raises(InvalidParameterError, match=f"holds '{occupy.rstrip('/')}"):
        rf.check_folder(out, name="t", spec_key="k", force=True)
    assert elsewhere.read_text() == "keep"


def test_publishing_refuses_a_link_at_a_file_it_writes_and_moves_nothing(tmp_path):
    out = tmp_path / "out"
    finished_folder(out)
    outside = write(tmp_path / "outside.csv", "keep")
    os.unlink(out / "results.csv")
    (out / "results.csv").symlink_to(outside)
    stage = staged(out, "k")
    with pytest.raises(InvalidParameterError, match="results.csv is not a file spectrial wrote"):
        rf.publish(stage, out, "k")
    assert outside.read_text() == "keep" and (out / CHECKSUMS).exists() and (stage / "results.csv").exists()


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over(
        tmp_path, caplog):
    import signal
    import socket
    import subprocess
    import sys

    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from spectrial.trials.results_folder import FolderLock\n"
                               f"FolderLock({str(out)!r}).__enter__()\nprint('locked', flush=True)\ntime.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InvalidParameterError, match=f"being written by another spectrial run \\(PID {holder.pid} "
                                                        f"on host '{socket.gethostname()}'"):
            rf.FolderLock(out).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / rf.LOCK).exists()  # a killed run leaves its lock file, but not its lock
    with rf.FolderLock(out):
        assert json.loads((out / rf.LOCK).read_text())["pid"] == os.getpid()
    assert any("stale lock" in r.message and str(holder.pid) in r.message for r in caplog.records)
    assert not (out / rf.LOCK).exists()


def test_a_lock_file_from_another_host_is_not_taken_over(tmp_path):
    (tmp_path / rf.LOCK).write_text(json.dumps({"pid": 12, "host": "node-7", "started_utc": "2026-01-01"}))
    with pytest.raises(InvalidParameterError, match="locked by a spectrial run on another host \\(PID 12 on host 'node-7'"):
        rf.FolderLock(tmp_path).__enter__()
    (tmp_path / rf.LOCK).unlink()
    (tmp_path / rf.LOCK).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidParameterError, match="not a link"):
        rf.FolderLock(tmp_path).__enter__()
    assert not (tmp_path / "elsewhere").exists()
