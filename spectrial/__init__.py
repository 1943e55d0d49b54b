"""spectrial: virtual clinical trials of myocardial perfusion SPECT.

The platform's packages are :mod:`spectrial.phantoms`, :mod:`spectrial.simulate`, :mod:`spectrial.models`
and :mod:`spectrial.trials` (imported on their own; this module imports none of them).
"""

from importlib.metadata import PackageNotFoundError, version
from pkgutil import extend_path

# The four packages live in their own folders at the repository root (pyproject.toml's package-dir), so a
# checkout's ``spectrial/`` folder holds this file alone; extending the path lets an installed copy's
# subpackages be found when Python is started in the checkout.
__path__ = extend_path(__path__, __name__)

try:
    __version__ = version("spectrial")  # the one version, pyproject.toml's, as installed
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
