"""Human-reader studies on a trial's images: a study is sampled from a finished trial into a SQLite
database (:mod:`.database`, :mod:`.create`), read in a local web app (:mod:`.app`) and exported or
analysed beside the trial's model observer (:mod:`.results`).

The web app needs the optional ``study`` extra (``pip install "spectrial[study]"``); creating, exporting
and analysing a study do not.
"""

from .create import create_study
from .database import PARADIGMS, RATING_SCALES, StudyDatabase, StudyError, open_study
from .design import reading_order
from .results import analyze_study, export_study, study_ratings

__all__ = ["PARADIGMS", "RATING_SCALES", "StudyDatabase", "StudyError", "analyze_study", "create_study",
           "export_study", "open_study", "reading_order", "study_ratings"]
