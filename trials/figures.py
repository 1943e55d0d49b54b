"""The report's figures (matplotlib), each drawn from the tables and arrays a trial stores.

Every function takes records read back by :mod:`spectrial.trials.outputs` and returns a Figure;
:func:`png_bytes` renders it. Axes carry labels with units; every AUC is drawn with its interval.
"""

from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted on a cluster node

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from spectrial.simulate.polarmap import polar_angles  # noqa: E402

from .statistics import roc_curve  # noqa: E402

VIEW_TITLES = {"short-axis": "SA (ant. up, sept. left)", "vertical-long-axis": "VLA (ant. up, apex right)",
               "horizontal-long-axis": "HLA (apex up, sept. left)"}
LINE_STYLES = ("-", "--", ":", "-.")


def png_bytes(fig: Figure, *, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def dose_label(dose: float) -> str:
    return "full" if dose == 1 else f"1/{round(1 / dose)}" if round(1 / dose) * dose == 1 else f"{dose:g}"


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def auc_vs_dose(results: list[dict], *, confidence: float, names: dict[str, str]) -> Figure:
    """AUC against dose per method, the confidence interval as a band, one panel per defect type."""
    defects = _unique(r["defect"] for r in results)
    methods = _unique(r["method"] for r in results)
    doses = sorted({r["dose_fraction"] for r in results})
    fig, axes = plt.subplots(1, len(defects), figsize=(5.6 * len(defects), 4.2), squeeze=False, layout="constrained")
    for ax, defect in zip(axes[0], defects):
        for m, method in enumerate(methods):
            mine = sorted((r for r in results if r["defect"] == defect and r["method"] == method),
                          key=lambda r: r["dose_fraction"])
            x = [r["dose_fraction"] for r in mine]
            ax.fill_between(x, [r["auc_ci_low"] for r in mine], [r["auc_ci_high"] for r in mine], color=f"C{m}",
                            alpha=0.18, lw=0)
            ax.plot(x, [r["auc"] for r in mine], marker="o", color=f"C{m}", ls=LINE_STYLES[m % 4], label=names[method])
        ax.set_xscale("log", base=2)
        ax.set_xticks(doses, [dose_label(d) for d in doses])
        ax.minorticks_off()
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="dose (fraction of the full injected activity)",
               ylabel=f"observer AUC (band: {100 * confidence:g} % CI)", ylim=(0.4, 1.02), title=names[defect])
        first = next(r for r in results if r["defect"] == defect)
        ax.text(0.02, 0.97, f"{first['n_absent']} defect-absent + {first['n_present']} defect-present cases per point",
                transform=ax.transAxes, fontsize=7, va="top")
        ax.legend(loc="lower right", fontsize=7)
    return fig


def roc_curves(scores: list[dict], results: list[dict], *, names: dict[str, str]) -> Figure:
    """Empirical ROC curves of every (dose, method) reading: colour by dose, line style by method."""
    defects = _unique(r["defect"] for r in results)
    methods = _unique(r["method"] for r in results)
    doses = sorted({r["dose_fraction"] for r in results}, reverse=True)
    grouped: dict[tuple, tuple[list, list]] = {}
    for s in scores:
        absent, present = grouped.setdefault((s["defect"], s["dose_fraction"], s["method"]), ([], []))
        (present if s["truth"] else absent).append(s["score"])
    fig, axes = plt.subplots(1, len(defects), figsize=(4.8 * len(defects), 4.6), squeeze=False, layout="constrained")
    for ax, defect in zip(axes[0], defects):
        for r in (r for r in results if r["defect"] == defect):
            absent, present = grouped[(defect, r["dose_fraction"], r["method"])]
            fpf, tpf, _ = roc_curve(np.asarray(absent), np.asarray(present))
            ax.step(fpf, tpf, where="post", lw=1.2, color=f"C{doses.index(r['dose_fraction'])}",
                    ls=LINE_STYLES[methods.index(r["method"]) % 4],
                    label=f"{dose_label(r['dose_fraction'])}, {names[r['method']]} (AUC {r['auc']:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set(xlabel="false-positive fraction", ylabel="true-positive fraction", xlim=(0, 1), ylim=(0, 1.01),
               title=names[defect], aspect="equal")
        ax.legend(loc="lower right", fontsize=6)
    return fig


def fidelity_vs_auc(results: list[dict], *, names: dict[str, str]) -> Figure:
    """Detectability against image fidelity (SSIM and RMSE against the noiseless reconstruction), one
    line per method through its dose levels: where a method improves fidelity but not AUC, the
    lines cross or run flat."""
    defects = _unique(r["defect"] for r in results)
    methods = _unique(r["method"] for r in results)
    metrics = (("noiseless_ssim", "SSIM vs noiseless reconstruction"),
               ("noiseless_rmse", "RMSE vs noiseless reconstruction (kBq/mL)"))
    fig, axes = plt.subplots(len(defects), 2, figsize=(10.5, 3.9 * len(defects)), squeeze=False, layout="constrained")
    for row, defect in enumerate(defects):
        for col, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            for m, method in enumerate(methods):
                mine = sorted((r for r in results if r["defect"] == defect and r["method"] == method),
                              key=lambda r: -r["dose_fraction"])
                x = np.array([r[metric] for r in mine])
                y = np.array([r["auc"] for r in mine])
                err = np.array([[r["auc"] - r["auc_ci_low"] for r in mine], [r["auc_ci_high"] - r["auc"] for r in mine]])
                ax.errorbar(x, y, yerr=err, marker="o", color=f"C{m}", ls=LINE_STYLES[m % 4], capsize=2, label=names[method])
                for r, xi, yi in zip(mine, x, y):
                    ax.annotate(dose_label(r["dose_fraction"]), (xi, yi), textcoords="offset points", xytext=(4, 4),
                                fontsize=6, color=f"C{m}")
            ax.set(xlabel=label, ylabel="observer AUC (bars: CI)", title=names[defect])
            if col == 1:
                ax.invert_xaxis()  # better fidelity to the right in both panels
            ax.legend(fontsize=7, loc="lower right")
    return fig


def example_views(examples: dict, state: int, *, names: dict[str, str]) -> Figure:
    """Cardiac views of the example patient (state 0: defect present, 1: absent): the phantom's true
    activity on the top row, then one row per dose with a view triple per method; the inserted
    defect outlined (solid when present, dashed where it would be)."""
    views, doses, methods = examples["views"][state], examples["dose_fractions"], examples["methods"]
    view_names, pitch = list(examples["view_names"]), float(examples["pitch_mm"])
    size = views.shape[-1]
    half = size * pitch / 2
    extent = (-half, half, half, -half)
    outline = examples["defect_views"]
    rows, cols = 1 + len(doses), len(methods) * len(view_names)
    fig, axes = plt.subplots(rows, cols, figsize=(1.55 * cols + 1.4, 1.6 * rows + 0.6), squeeze=False,
                             layout="constrained")
    vmax_truth = float(examples["phantom_views"][state].max())
    vmax = float(np.percentile(views, 99.5))
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            m, v = divmod(c, len(view_names))
            if r == 0 and m > 0:
                ax.axis("off")
                continue
            image = examples["phantom_views"][state][v] if r == 0 else views[r - 1, m, v]
            shown = ax.imshow(image, cmap="gray", vmin=0, vmax=vmax_truth if r == 0 else vmax, extent=extent)
            if r == 0:
                truth_shown = shown
            if outline is not None and outline[v].max() >= 0.5:
                ax.contour(np.linspace(-half, half, size), np.linspace(-half, half, size), outline[v], levels=[0.5],
                           colors="red", linewidths=0.8, linestyles="solid" if state == 0 else "dashed")
            ax.tick_params(labelsize=5)
            if r <= 1:
                above = "phantom" if r == 0 else textwrap.fill(names[str(methods[m])], 34)
                ax.set_title((f"{above}\n" if v == len(view_names) // 2 else "") + VIEW_TITLES[view_names[v]], fontsize=6)
            if c == 0:
                ax.set_ylabel(("true activity" if r == 0 else f"dose {dose_label(doses[r - 1])}") + "\nmm", fontsize=7)
            if r == rows - 1:
                ax.set_xlabel("mm", fontsize=6)
    fig.colorbar(truth_shown, ax=axes[0, :], label="phantom kBq/mL", shrink=0.8)
    fig.colorbar(shown, ax=axes[1:, :], label="reconstructed kBq/mL", shrink=0.6)
    states = [names.get(str(s), str(s)) for s in examples["states"]]
    fig.suptitle(f"Patient {int(examples['patient'])}, " + (f"{states[0]} defect" if state == 0 else "no defect")
                 + ("" if state == 0 else f" (dashed: where the {states[0]} defect lies when present)")
                 + "; realization 0", fontsize=8)
    return fig


def polar_maps(examples: dict, *, names: dict[str, str]) -> Figure:
    """Bullseye polar maps of the example patient with the defect present, each dose and method, in %
    of the map's maximum; the inserted defect's half-severity contour outlined."""
    polar, doses, methods = examples["polar"][0], examples["dose_fractions"], examples["methods"]
    n_rings, n_sectors = polar.shape[-2:]
    reduction = examples["true_polar_reduction"]
    ring_edges = 90.0 - np.linspace(0.0, 90.0, n_rings + 1)  # apex at the centre, base outside
    sector_edges = np.deg2rad(np.linspace(0.0, 360.0, n_sectors + 1))
    phi, theta = polar_angles(n_rings, n_sectors)
    cols = len(methods) + 1
    fig, axes = plt.subplots(len(doses), cols, figsize=(2.3 * cols + 0.8, 2.3 * len(doses) + 0.4), squeeze=False,
                             subplot_kw={"projection": "polar"}, layout="constrained")

    def draw(ax, values, cmap, vmin, vmax):
        # Clinical bullseye: anterior at the top, lateral to the right, septum to the left.
        ax.set_theta_zero_location("N")
        ax.set_theta_direction(-1)
        mesh = ax.pcolormesh(sector_edges, ring_edges, values, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
        if reduction is not None and reduction.max() > 0:
            ax.contour(np.deg2rad(theta), 90.0 - phi, reduction, levels=[0.5 * reduction.max()], colors="white",
                       linewidths=0.9)
        ax.set_xticks(np.deg2rad([0, 90, 180, 270]), ["ant", "lat", "inf", "sept"], fontsize=6)
        ax.set_yticks([])
        ax.set_ylim(0, 90)
        return mesh

    for r, f in enumerate(doses):
        for m, method in enumerate(methods):
            values = polar[r, m]
            mesh = draw(axes[r, m], 100 * values / values.max(), "jet", 0, 100)
            axes[r, m].set_title(textwrap.fill(f"dose {dose_label(f)}, {names[str(method)]}", 28), fontsize=7)
        ax = axes[r, -1]
        if r == 0 and reduction is not None:
            truth = draw(ax, 100 * reduction, "magma", 0, 100)
            ax.set_title("inserted uptake reduction", fontsize=7)
            fig.colorbar(truth, ax=ax, label="reduction (%)", shrink=0.7)
        else:
            ax.axis("off")
    fig.colorbar(mesh, ax=axes[:, :-1], label="uptake (% of map maximum)", shrink=0.6)
    fig.suptitle(f"Polar maps, patient {int(examples['patient'])}, {names.get(str(examples['states'][0]))} defect; realization 0 "
                 "(white: half-severity contour of the inserted defect)", fontsize=8)
    return fig


def population(parameters: dict[str, list[float]], units: dict[str, str]) -> Figure:
    """One strip of dots per varying patient parameter (each dot a patient), with its unit."""
    names = list(parameters)
    cols = 3
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(10.5, 1.25 * rows + 0.4), squeeze=False, layout="constrained")
    for ax, name in zip(axes.ravel(), names):
        values = np.asarray(parameters[name], float)
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(values))  # display only
        ax.scatter(values, jitter, s=12, alpha=0.7)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.set_xlabel(f"{name} ({units[name]})" if units[name] else name, fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    return fig
