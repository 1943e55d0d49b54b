"""The trial's progress bar: steps move the bar; units done, reused and failed are shown beside it."""

import io

from tqdm import tqdm

from spectrial.trials.execution import Progress
from spectrial.trials.progress import TrialProgressBar


def test_the_bar_follows_the_steps_and_shows_the_units():
    out = io.StringIO()
    bar = TrialProgressBar("trial", tqdm_class=tqdm, file=out, mininterval=0)
    status = Progress(total=6, reused=2, steps_total=28)
    bar(status)
    assert bar.bar.total == 28 and bar.bar.n == 0
    status.steps_done, status.done, status.failed = 10, 1, 1
    bar(status)
    assert bar.bar.n == 10
    assert bar.bar.postfix == "units=1/4, reused=2, failed=1"  # 4 of the 6 units are computed in this run
    status.steps_done, status.done = 28, 3
    bar(status)
    bar.write("a line above the bar")
    bar.close()
    assert bar.bar.n == 28 and "a line above the bar" in out.getvalue()


def test_closing_or_writing_before_any_update_does_nothing():
    bar = TrialProgressBar("trial", tqdm_class=tqdm, file=io.StringIO())
    bar.write("nothing yet")
    bar.close()
    assert bar.bar is None
