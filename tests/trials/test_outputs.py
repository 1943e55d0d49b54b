"""The files a trial stores: tidy CSV tables that read back with their types, and the names of its files."""

import csv

from spectrial.trials.outputs import read_table, reader_study_file, state_label, write_table

from tests.trials.small_trial import small


def test_a_table_reads_back_with_numbers_booleans_and_empty_cells(tmp_path):
    records = [{"defect": "inferior 60deg", "dose_fraction": 0.25, "n": 12, "is_reference": False, "p": None},
               {"defect": "anterior", "dose_fraction": 1.0, "n": 3, "is_reference": True, "p": 0.0125}]
    path = tmp_path / "t.csv"
    write_table(records, path)
    assert read_table(path) == records
    with open(path, newline="") as handle:  # plain CSV any reader takes: a header, then one line per record
        rows = list(csv.reader(handle))
    assert rows[0] == list(records[0]) and rows[1] == ["inferior 60deg", "0.25", "12", "False", ""]


def test_states_and_reader_study_files_are_named_for_the_reader():
    spec = small()
    assert state_label(spec, 0) == "absent" and state_label(spec, 1) == spec.defect_labels[0]
    assert [reader_study_file(k) for k in range(2)] == ["readers-defect1.imrmc", "readers-defect2.imrmc"]
