"""A progress bar for a running trial, in a terminal (the CLI) or a notebook (``run_trial(progress=True)``).

The bar counts steps, which move while units run (a unit's projection, its reconstruction at each dose
and each method at each dose), so it advances long before the first unit completes; the units
completed, reused from the store and failed are shown beside it.
"""

from __future__ import annotations

from .execution import Progress


class TrialProgressBar:
    """A tqdm bar driven by :class:`~.execution.Progress` updates; call it with each update, then close it.

    Parameters
    ----------
    description : str
        Text before the bar.
    tqdm_class : type, optional
        ``tqdm.tqdm`` (a terminal) or ``tqdm.auto.tqdm`` (a notebook widget where one is available);
        default ``tqdm.auto.tqdm``.
    **options
        Passed to the bar (e.g. ``file=sys.stderr``).
    """

    def __init__(self, description: str, *, tqdm_class=None, **options):
        if tqdm_class is None:
            from tqdm.auto import tqdm as tqdm_class
        self._make = lambda total: tqdm_class(total=total, desc=description, unit="step", **options)
        self.bar = None

    def __call__(self, status: Progress) -> None:
        if self.bar is None:
            self.bar = self._make(status.steps_total)
        self.bar.update(status.steps_done - self.bar.n)
        units = {"units": f"{status.done}/{status.total - status.reused}"}
        if status.reused:
            units["reused"] = status.reused
        if status.failed:
            units["failed"] = status.failed
        self.bar.set_postfix(units, refresh=False)

    def write(self, text: str) -> None:
        """A line above the bar."""
        if self.bar is not None:
            self.bar.write(text, file=getattr(self.bar, "fp", None))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
