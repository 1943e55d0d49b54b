"""spectrial.models: enhancement methods behind one interface, and their registry.

May import :mod:`spectrial.simulate` and :mod:`spectrial.phantoms`.
"""

from .classical import GaussianDenoiser, NoEnhancement
from .enhancement import EnhancementMethod, available_methods, make_method

__all__ = ["EnhancementMethod", "GaussianDenoiser", "NoEnhancement", "available_methods", "make_method"]
