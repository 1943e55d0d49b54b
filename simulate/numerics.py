"""Keeping float32 arithmetic out of the subnormal range.

Float32 numbers below ``numpy.finfo(numpy.float32).tiny`` (1.2e-38) are subnormal. Many x86 cores
handle an arithmetic operation on one with a microcode assist that costs about 100 times a normal
operation, so an operator that carries them (the far tails of a Gaussian kernel, an OSEM voxel decaying
towards zero) runs 5-90 times slower there than on a core that handles them fast. Flipping the
process's flush-to-zero mode would hide that, but a library must not change a user's floating-point
environment, so spectrial keeps such values out by construction: kernels are truncated to their
support (:func:`~spectrial.simulate.projector.gaussian_blur_matrix`), and values that iterative updates
can drive towards zero are cleared below :data:`NEGLIGIBLE`.
"""

from __future__ import annotations

import numpy as np
import torch

NEGLIGIBLE = 1e-30
"""Magnitudes below this are set to exactly zero where values are cleared: 1e8 times float32's smallest
normal number, far below any count, activity or attenuation factor a SPECT problem can hold (a path of
1 m of bone attenuates by 1e-13), so clearing them changes no result."""


OPERATOR_INPUT_FLOOR = 1e-20
"""Magnitudes below this in a volume or in projections handed to the projector are set to zero on entry.
The operator multiplies each value by up to three factors before a running sum clears it again (a
resampling weight, >= 5e-7; an attenuation factor; a blur or depth-split weight, >= 1e-6): a value of at
least this size stays above float32's smallest normal number through them for any attenuation factor
above 2.4e-6 (86 cm of soft tissue), where :data:`NEGLIGIBLE` alone would let a Gaussian blob's far tails
(1e-30 to 1e-20) turn subnormal. Still 1e14 times below a count or a kBq."""


def clear_negligible(values: torch.Tensor, floor: float = NEGLIGIBLE) -> torch.Tensor:
    """``values`` with every entry of magnitude at most ``floor`` (:data:`NEGLIGIBLE` by default) set to zero,
    in place (one pass)."""
    return torch.hardshrink(values, floor, out=values)


def subnormal_count(values) -> int:
    """Number of nonzero entries of ``values`` (an array or tensor) with magnitude below float32's
    smallest normal number."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    magnitude = np.abs(array.astype(np.float32, copy=False))
    return int(np.count_nonzero((magnitude > 0) & (magnitude < np.finfo(np.float32).tiny)))
