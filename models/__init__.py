"""spectrial.models: enhancement methods behind one interface, and their registry.

May import :mod:`spectrial.simulate` and :mod:`spectrial.phantoms`.
"""

from .classical import BM4D, ButterworthDenoiser, GaussianDenoiser, NoEnhancement, NonLocalMeans, TotalVariation
from .enhancement import METHODS, EnhancementMethod, available_methods, make_method, method_class
from .learned import NetworkDenoiser, PluginMethod
from .networks import ARCHITECTURES, load_checkpoint, make_network, save_checkpoint

__all__ = ["ARCHITECTURES", "BM4D", "METHODS", "NetworkDenoiser", "PluginMethod", "load_checkpoint", "make_network",
           "save_checkpoint",
           "ButterworthDenoiser", "EnhancementMethod", "GaussianDenoiser", "NoEnhancement", "NonLocalMeans",
           "TotalVariation", "available_methods", "make_method", "method_class"]
