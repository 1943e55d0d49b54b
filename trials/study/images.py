"""What a reader looks at: a trial case's images, regenerated or read from the store, rendered as the
three standard cardiac views on a clinical colour scale with one fixed window for the whole study.

:func:`unit_images` is the one place that calls the trial's unit computation (the simulation and the
enhancement methods); everything else here works on the arrays it returns.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from PIL import Image

from spectrial.phantoms.errors import InvalidParameterError, SpectrialError
from spectrial.simulate import CARDIAC_VIEWS, Volume, cardiac_view

from ..example_views import EXAMPLE_FIELD_MM
from ..unit import enhanced_volume, observer_input, simulate_unit

VIEW_PIXELS = 160  # pixels per side of each rendered view
WINDOW_PERCENTILE = 99.5  # the study's window tops out at this percentile of every rendered pixel
DEFAULT_COLOUR_SCALE = "gist_heat"  # black-red-yellow-white "hot metal", the common nuclear-medicine scale


def unit_images(spec, store, planned, patient, *, methods, doses) -> tuple[object, dict[tuple[float, int], np.ndarray]]:
    """One work unit's phantom LV geometry and its enhanced images in the chosen arms.

    With ``execution.keep_volumes`` the images are the stored ones; otherwise the unit is simulated again
    through the trial's own unit computation (same keyed random streams, so the same images) and each
    regenerated image is checked against the observer input the trial stored for it (with reorientation
    ``"phantom"``; an estimated reorientation is not repeated here), so a study never shows images other
    than those the trial's observer read.

    Parameters
    ----------
    spec : TrialSpec
    store : ResultStore
    planned : PlannedUnit
        The unit with the content keys of its stored parts (as the evidence manifest lists them).
    patient : Patient
    methods : list of int
    doses : list of float

    Returns
    -------
    lv : LVGeometry
    images : dict
        ``(dose, method) -> (realizations, z, y, x)`` kBq/mL, realizations ``planned.unit.start`` onwards.
    """
    unit = planned.unit
    for key in planned.keys:
        if not store.has(key):
            raise SpectrialError(f"{unit.label}: part {key[:12]}... listed in the evidence manifest is missing from "
                                 "the result store; no study was created")
    doses_all = spec.simulation.dose_fractions
    if spec.execution.keep_volumes:
        _, base = store.load(planned.base_key)
        sim = simulate_unit(spec, patient, unit, volumes=base)
        images = {}
        for m in methods:
            _, arrays = store.load(planned.method_keys[m])
            for f in doses:
                images[(f, m)] = np.asarray(arrays[f"enhanced_{doses_all.index(f)}"])
        return sim.phantom.lv, images
    sim = simulate_unit(spec, patient, unit)
    images = {(f, m): np.asarray(enhanced_volume(spec, sim, m, f).array, dtype=np.float32)
              for m in methods for f in doses}
    if spec.reconstruction.reorientation == "phantom":
        _check_regenerated(spec, store, planned, sim, images)
    return sim.phantom.lv, images


def _check_regenerated(spec, store, planned, sim, images) -> None:
    """The observer inputs of the regenerated images must equal those the trial's observer read."""
    lv = sim.phantom.lv
    k = planned.unit.state - 1 if planned.unit.state else 0
    centre = spec.defects[k].centre_mm(lv)
    for (f, m), stack in images.items():
        _, arrays = store.load(planned.method_keys[m])
        stored = arrays[f"input_{k}_{spec.simulation.dose_fractions.index(f)}"]
        again = observer_input(Volume(stack, sim.recon_grid), lv, centre, spec.observer).astype(np.float32)
        if not np.array_equal(stored, again):
            raise SpectrialError(f"{planned.unit.label}: the regenerated image at dose {f:g}, method "
                                 f"{spec.method_labels[m]!r} differs from the one the trial's observer read "
                                 "(is the numerical library the same?); no study was created")


def view_centre_mm(spec, lv, defect: int) -> np.ndarray:
    """Point on the LV long axis at the level of defect type ``defect``'s nominal centre, (z, y, x) mm."""
    w, _, _ = lv.to_lv(spec.defects[defect].centre_mm(lv))
    return lv.from_lv(w, 0.0, 0.0)


def cardiac_views(image: np.ndarray, grid, lv, centre_mm) -> np.ndarray:
    """Short-axis, vertical and horizontal long-axis slices (:data:`CARDIAC_VIEWS` order) of one image
    ``(z, y, x)`` through ``centre_mm``, each ``(VIEW_PIXELS, VIEW_PIXELS)`` over EXAMPLE_FIELD_MM (128 mm)."""
    pitch = EXAMPLE_FIELD_MM / VIEW_PIXELS
    volume = Volume(np.asarray(image, dtype=np.float32), grid)
    return np.stack([cardiac_view(volume, lv, centre_mm, view, size=VIEW_PIXELS, pitch_mm=pitch)
                     for view in CARDIAC_VIEWS]).astype(np.float32)


def study_window(views: list[np.ndarray]) -> tuple[float, float]:
    """The study's display window (kBq/mL): 0 to the :data:`WINDOW_PERCENTILE` percentile of every view of
    every case in every arm, so one level of uptake looks the same on every screen."""
    values = np.concatenate([np.ravel(v) for v in views])
    upper = float(np.percentile(values, WINDOW_PERCENTILE))
    if not upper > 0:
        raise InvalidParameterError("the study's images hold no positive activity: no display window can be set")
    return 0.0, upper


def check_colour_scale(name: str) -> str:
    if name not in matplotlib.colormaps:
        raise InvalidParameterError(f"--colour-scale={name!r} is not allowed: expected a matplotlib colour map name "
                                    f"such as {DEFAULT_COLOUR_SCALE!r}, 'hot' or 'gray'")
    return name


def view_png(view: np.ndarray, window: tuple[float, float], colour_scale: str) -> bytes:
    """One view ``(rows, columns)`` in kBq/mL as PNG bytes: clipped to ``window``, coloured by
    ``colour_scale``; the same array always gives the same bytes (no time or software stamp)."""
    low, high = window
    scaled = np.clip((np.asarray(view, dtype=float) - low) / (high - low), 0.0, 1.0)
    rgb = (matplotlib.colormaps[colour_scale](scaled)[..., :3] * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def colour_bar_png(window: tuple[float, float], colour_scale: str, *, height: int = VIEW_PIXELS) -> bytes:
    """A vertical colour bar (top: the window's upper level) as PNG bytes."""
    ramp = np.linspace(window[1], window[0], height)[:, None] * np.ones((1, 16))
    return view_png(ramp, window, colour_scale)
