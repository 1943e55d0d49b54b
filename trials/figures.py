"""The report's figures (matplotlib), each drawn from the tables and arrays a trial stores.

Every function takes records read back by :mod:`spectrial.trials.outputs` and returns a
:class:`matplotlib.figure.Figure` drawn without pyplot (so importing or drawing never changes the
caller's matplotlib backend); :func:`png_bytes` renders it. Figures are :data:`WIDTH_IN` inches wide,
drawn to fill the report's text column, with text of at least 8 pt (11 px on the page); axes carry
units and say which way is better, every AUC is drawn with its interval, and images use perceptually
uniform colour maps with colour bars.
"""

from __future__ import annotations

import io
import textwrap
from contextlib import contextmanager

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from spectrial.simulate.polarmap import polar_angles

from .statistics import roc_curve

WIDTH_IN = 11.2  # the report's text column (1120 px at 100 px per inch)
DPI = 150  # PNG resolution; the page shows the figure at about 100 px per inch, sharp on high-density screens
# Okabe & Ito's colour-blind-safe palette, one colour per method in every figure.
METHOD_COLOURS = ("#000000", "#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
         "legend.fontsize": 9, "figure.titlesize": 12, "axes.spines.top": False, "axes.spines.right": False}
VIEW_TITLES = {"short-axis": "SA", "vertical-long-axis": "VLA", "horizontal-long-axis": "HLA"}
BETTER_AUC = "observer AUC (higher is better ↑)"


@contextmanager
def _style():
    with matplotlib.rc_context(STYLE):
        yield


def png_bytes(fig: Figure, *, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def dose_label(dose: float) -> str:
    return "full" if dose == 1 else f"1/{round(1 / dose)}" if round(1 / dose) * dose == 1 else f"{dose:g}"


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _method_style(m: int) -> dict:
    return {"color": METHOD_COLOURS[m % len(METHOD_COLOURS)], "ls": LINE_STYLES[m % len(LINE_STYLES)],
            "marker": MARKERS[m % len(MARKERS)]}


def _wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width, break_long_words=False)


def auc_vs_dose(results: list[dict], *, confidence: float, names: dict[str, str], interval: str = "DeLong") -> Figure:
    """AUC against dose per method, the confidence interval as a band, one panel per defect type."""
    defects = _unique(r["defect"] for r in results)
    methods = _unique(r["method"] for r in results)
    doses = sorted({r["dose_fraction"] for r in results})
    cols = min(2, len(defects))
    rows = -(-len(defects) // cols)
    with _style():
        fig = Figure(figsize=(WIDTH_IN, 4.2 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
        for ax, defect in zip(axes, defects):
            for m, method in enumerate(methods):
                mine = sorted((r for r in results if r["defect"] == defect and r["method"] == method),
                              key=lambda r: r["dose_fraction"])
                x = [r["dose_fraction"] for r in mine]
                style = _method_style(m)
                ax.fill_between(x, [r["auc_ci_low"] for r in mine], [r["auc_ci_high"] for r in mine],
                                color=style["color"], alpha=0.12, lw=0)
                ax.plot(x, [r["auc"] for r in mine], lw=2, ms=6, label=names[method], **style)
            ax.set_xscale("log", base=2)
            ax.set_xticks(doses, [dose_label(d) for d in doses])
            ax.minorticks_off()
            ax.axhline(0.5, color="grey", lw=0.8, ls=":")
            ax.text(0.5, 0.495, "chance", color="grey", fontsize=9, va="top", ha="center",
                    transform=ax.get_yaxis_transform())
            ax.set(xlabel="dose (fraction of the full injected activity)",
                   ylabel=f"{BETTER_AUC}\nband: {100 * confidence:g} % CI ({interval})", ylim=(0.4, 1.02),
                   title=_wrap(names[defect], 60))
            first = next(r for r in results if r["defect"] == defect)
            ax.text(0.02, 0.97, f"{first['n_absent']} defect-absent + {first['n_present']} defect-present cases "
                    "per point", transform=ax.transAxes, fontsize=9, va="top")
            ax.legend(loc="lower right", frameon=True, framealpha=0.9)
        for ax in axes[len(defects):]:
            ax.set_visible(False)
    return fig


def ef_error_vs_dose(summary: list[dict], *, names: dict[str, str], confidence: float) -> Figure:
    """The functional task: EF bias against dose per method, its confidence interval over patients as a
    band and the errors' spread (+- 1 SD) as bars (:func:`~spectrial.trials.functional.function_summary`)."""
    methods = _unique(r["method"] for r in summary)
    doses = sorted({r["dose_fraction"] for r in summary})
    with _style():
        fig = Figure(figsize=(WIDTH_IN * 0.6, 4.2), layout="constrained")
        ax = fig.subplots()
        offsets = np.linspace(-0.06, 0.06, len(methods)) if len(methods) > 1 else [0.0]
        for m, method in enumerate(methods):
            mine = sorted((r for r in summary if r["method"] == method and r["n"]), key=lambda r: r["dose_fraction"])
            x = np.array([r["dose_fraction"] for r in mine]) * 2 ** offsets[m]  # side by side on the log axis
            bias = 100 * np.array([r["ef_bias"] for r in mine])
            spread = 100 * np.array([r["ef_error_sd"] or 0.0 for r in mine])
            style = _method_style(m)
            if all(r["ef_bias_low"] is not None for r in mine):
                ax.fill_between(x, [100 * r["ef_bias_low"] for r in mine], [100 * r["ef_bias_high"] for r in mine],
                                color=style["color"], alpha=0.12, lw=0)
            ax.errorbar(x, bias, yerr=spread, lw=2, ms=6, capsize=3, label=names.get(method, method), **style)
        ax.axhline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_xticks(doses, [dose_label(d) for d in doses])
        ax.minorticks_off()
        ax.set(xlabel="dose (fraction of the full injected activity)",
               ylabel=f"EF error (measured - true, EF points)\nband: {100 * confidence:g} % CI over patients; "
                      "bars: +- 1 SD",
               title="Ejection fraction from the gates")
        ax.legend(loc="best", frameon=True, framealpha=0.9)
    return fig


def roc_curves(scores: list[dict], results: list[dict], *, names: dict[str, str]) -> Figure:
    """Empirical ROC curves in small multiples: one row per defect type, one panel per dose, one curve
    per method (its AUC in the legend)."""
    defects = _unique(r["defect"] for r in results)
    methods = _unique(r["method"] for r in results)
    doses = sorted({r["dose_fraction"] for r in results}, reverse=True)
    grouped: dict[tuple, tuple[list, list]] = {}
    for s in scores:
        absent, present = grouped.setdefault((s["defect"], s["dose_fraction"], s["method"]), ([], []))
        (present if s["truth"] else absent).append(s["score"])
    side = min(WIDTH_IN / len(doses), 3.6)
    with _style():
        fig = Figure(figsize=(WIDTH_IN, (side + 0.5) * len(defects) + 0.3), layout="constrained")
        rows = fig.subfigures(len(defects), 1, squeeze=False)[:, 0]
        for sub, defect in zip(rows, defects):
            axes = sub.subplots(1, len(doses), sharex=True, sharey=True, squeeze=False)[0]
            sub.suptitle(_wrap(names[defect], 110), fontsize=11)
            for ax, dose in zip(axes, doses):
                for m, method in enumerate(methods):
                    absent, present = grouped[(defect, dose, method)]
                    auc = next(r["auc"] for r in results if (r["defect"], r["dose_fraction"], r["method"])
                               == (defect, dose, method))
                    fpf, tpf, _ = roc_curve(np.asarray(absent), np.asarray(present))
                    style = _method_style(m)
                    ax.step(fpf, tpf, where="post", lw=1.6, color=style["color"], ls=style["ls"],
                            label=f"{_wrap(names[method], 22)}: {auc:.2f}")
                ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
                ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", title=f"{dose_label(dose)} dose")
                ax.legend(loc="lower right", fontsize=8, title="AUC", title_fontsize=8, handlelength=1.6,
                          borderpad=0.3, labelspacing=0.25, framealpha=0.9)
                ax.set_xlabel("false-positive fraction")
            axes[0].set_ylabel("true-positive fraction\n(better: up and left)")
    return fig


def fidelity_vs_auc(results: list[dict], *, names: dict[str, str]) -> Figure:
    """Detectability against image fidelity (SSIM and RMSE against the noiseless reconstruction), one
    line per method through its dose levels: where a method improves fidelity but not AUC, the
    lines cross or run flat."""
    defects = _unique(r["defect"] for r in results)
    methods = _unique(r["method"] for r in results)
    metrics = (("noiseless_ssim", "SSIM vs noiseless reconstruction (higher is better →)"),
               ("noiseless_rmse", "RMSE vs noiseless reconstruction, kBq/mL (← lower is better)"))
    with _style():
        fig = Figure(figsize=(WIDTH_IN, 4.8 * len(defects)), layout="constrained")
        axes = fig.subplots(len(defects), 2, squeeze=False)
        for row, defect in enumerate(defects):
            for col, (metric, label) in enumerate(metrics):
                ax = axes[row, col]
                for m, method in enumerate(methods):
                    mine = sorted((r for r in results if r["defect"] == defect and r["method"] == method),
                                  key=lambda r: -r["dose_fraction"])
                    x = np.array([r[metric] for r in mine])
                    y = np.array([r["auc"] for r in mine])
                    err = np.array([[r["auc"] - r["auc_ci_low"] for r in mine],
                                    [r["auc_ci_high"] - r["auc"] for r in mine]])
                    style = _method_style(m)
                    ax.errorbar(x, y, yerr=err, capsize=2, lw=1.6, ms=6, label=names[method], **style)
                    for r, xi, yi in zip(mine, x, y):
                        ax.annotate(dose_label(r["dose_fraction"]), (xi, yi), textcoords="offset points",
                                    xytext=(5, 4), fontsize=9, color=style["color"])
                ax.set(xlabel=label, ylabel=f"{BETTER_AUC}\nbars: CI", title=_wrap(names[defect], 55))
                ax.legend(loc="lower right", framealpha=0.9)
    return fig


def example_views(examples: dict, state: int, *, names: dict[str, str]) -> Figure:
    """Cardiac views of the example patient (state 0: defect present, 1: absent): the phantom's true
    activity on top, then one block per method with a row per dose and a column per view (SA, VLA,
    HLA); the inserted defect outlined (solid when present, dashed where it would be); one colour
    bar per block (kBq/mL)."""
    views, doses, methods = examples["views"][state], examples["dose_fractions"], examples["methods"]
    view_names, pitch = list(examples["view_names"]), float(examples["pitch_mm"])
    size = views.shape[-1]
    half = size * pitch / 2
    extent = (-half, half, half, -half)
    grid_mm = np.linspace(-half, half, size)
    outline = examples["defect_views"]
    n_views = len(view_names)
    side = min(1.25, (WIDTH_IN - 0.9 * len(methods)) / (n_views * len(methods)))
    vmax = float(np.percentile(views, 99.5))

    def show(ax, image, vmin, top):
        shown = ax.imshow(image, cmap="gray", vmin=vmin, vmax=top, extent=extent)
        ax.set_xticks([])
        ax.set_yticks([])
        return shown

    def outline_view(ax, v):
        if outline is not None and outline[v].max() >= 0.5:
            ax.contour(grid_mm, grid_mm, outline[v], levels=[0.5], colors="#ff3b30", linewidths=1.2,
                       linestyles="solid" if state == 0 else "dashed")

    states = [names.get(str(s), str(s)) for s in examples["states"]]
    with _style():
        fig = Figure(figsize=(WIDTH_IN, side * (len(doses) + 1) + 1.6), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[side + 0.5, side * len(doses) + 0.6])
        truth = examples["phantom_views"][state]
        axes = top.subplots(1, n_views)
        for v, ax in enumerate(axes):
            shown = show(ax, truth[v], 0, float(np.percentile(truth, 99.5)))
            outline_view(ax, v)
            ax.set_title(VIEW_TITLES[view_names[v]])
        axes[0].set_ylabel("true activity")
        top.colorbar(shown, ax=list(axes), label="kBq/mL", shrink=0.9, extend="max")
        blocks = bottom.subfigures(1, len(methods), squeeze=False)[0]
        for m, block in enumerate(blocks):
            block.suptitle(_wrap(names[str(methods[m])], 26), fontsize=10)
            axes = block.subplots(len(doses), n_views, squeeze=False)
            for r, dose in enumerate(doses):
                for v in range(n_views):
                    shown = show(axes[r, v], views[r, m, v], 0, vmax)
                    outline_view(axes[r, v], v)
                    if r == 0:
                        axes[r, v].set_title(VIEW_TITLES[view_names[v]], fontsize=9)
                if m == 0:
                    axes[r, 0].set_ylabel(f"{dose_label(dose)} dose")
            if m == len(blocks) - 1:
                block.colorbar(shown, ax=list(axes.ravel()), label="reconstructed kBq/mL", shrink=0.8, extend="max")
        fig.suptitle(f"Patient {int(examples['patient'])}, " + (f"defect present ({states[0]})" if state == 0 else
                     "defect absent (dashed: where the defect lies when present)") + "; noise realization 0")
    return fig


def polar_maps(examples: dict, *, names: dict[str, str]) -> Figure:
    """Bullseye polar maps of the example patient with the defect present, each dose and method, in %
    of the map's maximum (perceptually uniform colour map); the inserted defect's half-severity
    contour outlined."""
    polar, doses, methods = examples["polar"][0], examples["dose_fractions"], examples["methods"]
    n_rings, n_sectors = polar.shape[-2:]
    reduction = examples["true_polar_reduction"]
    ring_edges = 90.0 - np.linspace(0.0, 90.0, n_rings + 1)  # apex at the centre, base outside
    sector_edges = np.deg2rad(np.linspace(0.0, 360.0, n_sectors + 1))
    phi, theta = polar_angles(n_rings, n_sectors)
    cols = len(methods) + 1
    side = min(2.6, (WIDTH_IN - 1.2) / cols)

    def draw(ax, values, cmap, vmin, vmax):
        # Clinical bullseye: anterior at the top, lateral to the right, septum to the left.
        ax.set_theta_zero_location("N")
        ax.set_theta_direction(-1)
        mesh = ax.pcolormesh(sector_edges, ring_edges, values, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
        if reduction is not None and reduction.max() > 0:
            ax.contour(np.deg2rad(theta), 90.0 - phi, reduction, levels=[0.5 * reduction.max()], colors="white",
                       linewidths=1.5)
        ax.set_xticks(np.deg2rad([0, 90, 180, 270]), ["ant", "lat", "inf", "sept"], fontsize=9)
        ax.tick_params(pad=-1)
        ax.set_yticks([])
        ax.set_ylim(0, 90)
        ax.grid(False)
        return mesh

    with _style():
        fig = Figure(figsize=(WIDTH_IN, (side + 0.45) * len(doses) + 0.8), layout="constrained")
        axes = fig.subplots(len(doses), cols, squeeze=False, subplot_kw={"projection": "polar"})
        for r, f in enumerate(doses):
            for m, method in enumerate(methods):
                values = polar[r, m]
                mesh = draw(axes[r, m], 100 * values / values.max(), "viridis", 0, 100)
                if r == 0:
                    axes[r, m].set_title(_wrap(names[str(method)], 24), fontsize=10)
            axes[r, 0].text(-0.32, 0.5, f"{dose_label(f)} dose", transform=axes[r, 0].transAxes, rotation=90,
                            va="center", ha="center", fontsize=10)
            ax = axes[r, -1]
            if r == 0 and reduction is not None:
                truth = draw(ax, 100 * reduction, "magma", 0, 100)
                ax.set_title("inserted uptake reduction", fontsize=10)
                fig.colorbar(truth, ax=ax, label="reduction (%)", shrink=0.8)
            else:
                ax.set_visible(False)
        fig.colorbar(mesh, ax=axes[:, :-1], label="uptake (% of the map's maximum)", shrink=0.6)
        fig.suptitle(f"Polar maps, patient {int(examples['patient'])}, defect present; noise realization 0 "
                     "(white line: half-severity contour of the inserted defect)", fontsize=11)
    return fig


def population(parameters: dict[str, list[float]], units: dict[str, str]) -> Figure:
    """One strip of dots per varying patient parameter (each dot a patient), named with its unit."""
    names = list(parameters)
    cols = 3
    rows = max(1, -(-len(names) // cols))
    with _style():
        fig = Figure(figsize=(WIDTH_IN, 1.05 * rows + 0.3), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, name in zip(axes.ravel(), names):
            values = np.asarray(parameters[name], float)
            jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(values))  # display only
            ax.scatter(values, jitter, s=16, alpha=0.75, color=METHOD_COLOURS[2])
            ax.set_ylim(-1, 1)
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            ax.set_xlabel(_wrap(f"{name} ({units[name]})" if units[name] else name, 48), fontsize=9)
            ax.tick_params(labelsize=9)
        for ax in axes.ravel()[len(names):]:
            ax.set_visible(False)
    return fig
