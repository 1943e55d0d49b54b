"""Execute the example notebooks (as continuous integration does) and report each one's run time.

    python examples/run_notebooks.py                 # every examples/*.ipynb
    python examples/run_notebooks.py examples/observer_study.ipynb

The notebooks are run in a temporary folder with nbclient (the ``docs`` extra); the files in
``examples/`` are not changed. Exits with status 1 when a cell raises.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def run_notebook(path: Path, *, timeout_s: int = 600) -> float:
    """Execute every cell of ``path`` in a fresh kernel started in a temporary folder; seconds taken."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(notebook, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": folder}}
                       ).execute()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=sorted(HERE.glob("*.ipynb")))
    args = parser.parse_args(argv)
    failed = 0
    for path in args.notebooks:
        try:
            seconds = run_notebook(path)
        except CellExecutionError as error:
            failed += 1
            print(f"FAILED {path.name}:\n{error}", file=sys.stderr)
            continue
        print(f"{path.name}: ran in {seconds:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
