"""Example enhancement plug-ins: a user's own models, run by spectrial without editing it.

1. By import path: a function taking the images ``(batch, z, y, x)`` (float32, kBq/mL) and returning
   the same shape. In a trial file (this folder on PYTHONPATH, or the module installed):

       [[methods]]
       name = "plugin"
       callable = "my_denoisers:median_denoiser"

2. By TorchScript: any torch module mapping ``(batch, 1, z, y, x)`` to the same shape, saved with
   ``torch.jit.script(module).save("smoother.pt")`` (``python my_denoisers.py`` writes this one):

       [[methods]]
       name = "plugin"
       torchscript = "smoother.pt"

3. By state dict of a registered architecture (``spectrial.models.ARCHITECTURES``):

       [[methods]]
       name = "plugin"
       state_dict = "weights.pt"
       architecture = "unet3d"
"""

import numpy as np
import torch
from scipy import ndimage


def median_denoiser(images: np.ndarray, *, dose_fraction: float, voxel_mm: float) -> np.ndarray:
    """3x3x3 median filter of each image; two passes below quarter dose."""
    passes = 2 if dose_fraction < 0.25 else 1
    out = images
    for _ in range(passes):
        out = np.stack([ndimage.median_filter(image, size=3, mode="nearest") for image in out])
    return out


class BoxSmoother(torch.nn.Module):
    """A fixed 3x3x3 mean filter as a torch module (stand-in for a user's trained network)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False, padding_mode="replicate")
        torch.nn.init.constant_(self.conv.weight, 1.0 / 27)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


if __name__ == "__main__":
    torch.jit.script(BoxSmoother()).save("smoother.pt")
    print("wrote smoother.pt")
