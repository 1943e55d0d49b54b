"""Photon cross-sections of the tissues a Tc-99m photon crosses, and the map from a phantom to them.

Mass attenuation coefficients (cm^2/g) of photoelectric absorption, incoherent (Compton) and
coherent (Rayleigh) scattering come from the photon cross-section tables of NIST XCOM (Berger,
Hubbell, Seltzer et al., NIST Standard Reference Database 8, NBSIR 87-3597), built from the same
sources XCOM uses (Scofield's photoelectric cross-sections; incoherent scattering functions of
Hubbell et al., J Phys Chem Ref Data 1975;4:471; form factors of Hubbell & Overbo, J Phys Chem Ref
Data 1979;8:69) as tabulated per element by Elam, Ravel & Sieber (Radiat Phys Chem 2002;63:121),
summed over each tissue's elemental composition by mass (ICRU Report 44, 1989). Water's totals
reproduce XCOM's 0.1707 and 0.1505 cm^2/g at 100 and 150 keV. Between the tabulated energies the
coefficients are interpolated log-log, as XCOM does.

The coherent angular distribution uses the same form factors: ``G(x) = sum_i (w_i / A_i) F_i(x)^2``
(independent-atom approximation, per gram up to Avogadro's number) at momentum transfer
``x = sin(theta / 2) / lambda`` in 1/Angstrom.

A phantom's voxels get a material from their label (:class:`~spectrial.phantoms.Label`) or, without
labels, from their attenuation coefficient; each voxel's density is then its 140.5 keV attenuation
coefficient over the material's mass attenuation coefficient, so the Monte Carlo sees exactly the
phantom's attenuation at the photopeak and the tables' energy dependence below it.
"""

from __future__ import annotations

import numpy as np

from spectrial.phantoms.anatomy import Label
from spectrial.phantoms.errors import InvalidParameterError

TC99M_KEV = 140.5
HC_KEV_ANGSTROM = 12.398420  # h c: a photon of E keV has 1 / lambda = E / 12.3984 1/Angstrom
AVOGADRO = 6.02214076e23
ELECTRON_RADIUS_CM = 2.8179403262e-13
ELECTRON_REST_KEV = 510.99895

MATERIALS = ("air", "water", "soft_tissue", "lung", "bone", "breast")
"""Material names, indexed by the material ids of :func:`material_map` (air is vacuum: density 0)."""

# Elemental composition by mass (ICRU Report 44): soft tissue (ICRU four-component-like adult soft
# tissue), inflated lung, cortical bone, breast (50/50 adipose/glandular).
COMPOSITIONS = {
    "water": {"H": 0.111894, "O": 0.888106},
    "soft_tissue": {"H": 0.102, "C": 0.143, "N": 0.034, "O": 0.708, "Na": 0.002, "P": 0.003, "S": 0.003,
                    "Cl": 0.002, "K": 0.003},
    "lung": {"H": 0.103, "C": 0.105, "N": 0.031, "O": 0.749, "Na": 0.002, "P": 0.002, "S": 0.003, "Cl": 0.003,
             "K": 0.002},
    "bone": {"H": 0.034, "C": 0.155, "N": 0.042, "O": 0.435, "Na": 0.001, "Mg": 0.002, "P": 0.103, "S": 0.003,
             "Ca": 0.225},
    "breast": {"H": 0.106, "C": 0.332, "N": 0.030, "O": 0.527, "Na": 0.001, "P": 0.001, "S": 0.002, "Cl": 0.001},
}

TABLE_KEV = np.array([60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 130.0, 140.5, 150.0])
"""Energies (keV) of the cross-section tables."""

# Mass attenuation coefficients, cm^2/g, at TABLE_KEV: (photoelectric, incoherent, coherent).
CROSS_SECTIONS_CM2_PER_G = {
    "water": (
        (1.493e-02, 8.970e-03, 5.770e-03, 3.911e-03, 2.762e-03, 2.018e-03, 1.516e-03, 1.166e-03, 9.046e-04, 7.308e-04),
        (1.7703e-01, 1.7341e-01, 1.6972e-01, 1.6611e-01, 1.6261e-01, 1.5927e-01, 1.5607e-01, 1.5302e-01, 1.4998e-01,
         1.4735e-01),
        (1.392e-02, 1.048e-02, 8.165e-03, 6.537e-03, 5.349e-03, 4.456e-03, 3.768e-03, 3.227e-03, 2.775e-03, 2.442e-03)),
    "soft_tissue": (
        (1.583e-02, 9.548e-03, 6.160e-03, 4.185e-03, 2.962e-03, 2.168e-03, 1.632e-03, 1.257e-03, 9.765e-04, 7.898e-04),
        (1.7548e-01, 1.7187e-01, 1.6821e-01, 1.6462e-01, 1.6115e-01, 1.5782e-01, 1.5465e-01, 1.5163e-01, 1.4861e-01,
         1.4600e-01),
        (1.354e-02, 1.019e-02, 7.940e-03, 6.357e-03, 5.201e-03, 4.333e-03, 3.664e-03, 3.138e-03, 2.698e-03, 2.375e-03)),
    "lung": (
        (1.600e-02, 9.644e-03, 6.220e-03, 4.225e-03, 2.990e-03, 2.188e-03, 1.646e-03, 1.268e-03, 9.847e-04, 7.964e-04),
        (1.7559e-01, 1.7199e-01, 1.6834e-01, 1.6475e-01, 1.6128e-01, 1.5795e-01, 1.5478e-01, 1.5176e-01, 1.4874e-01,
         1.4613e-01),
        (1.371e-02, 1.032e-02, 8.045e-03, 6.441e-03, 5.271e-03, 4.391e-03, 3.713e-03, 3.180e-03, 2.734e-03, 2.407e-03)),
    "bone": (
        (1.255e-01, 7.729e-02, 5.072e-02, 3.496e-02, 2.505e-02, 1.854e-02, 1.408e-02, 1.094e-02, 8.561e-03, 6.969e-03),
        (1.6093e-01, 1.5819e-01, 1.5524e-01, 1.5224e-01, 1.4928e-01, 1.4639e-01, 1.4360e-01, 1.4091e-01, 1.3821e-01,
         1.3587e-01),
        (2.838e-02, 2.157e-02, 1.693e-02, 1.363e-02, 1.121e-02, 9.375e-03, 7.956e-03, 6.835e-03, 5.895e-03, 5.201e-03)),
    "breast": (
        (1.191e-02, 7.163e-03, 4.609e-03, 3.125e-03, 2.208e-03, 1.614e-03, 1.213e-03, 9.331e-04, 7.240e-04, 5.851e-04),
        (1.7651e-01, 1.7281e-01, 1.6908e-01, 1.6542e-01, 1.6190e-01, 1.5854e-01, 1.5533e-01, 1.5228e-01, 1.4923e-01,
         1.4661e-01),
        (1.213e-02, 9.125e-03, 7.105e-03, 5.684e-03, 4.647e-03, 3.869e-03, 3.271e-03, 2.800e-03, 2.407e-03, 2.118e-03)),
}

FORM_FACTOR_X = np.array([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 2.5,
                          3.0, 4.0, 5.0, 6.0, 8.0, 12.0])
"""Momentum transfers ``x = sin(theta / 2) / lambda`` (1/Angstrom) of :data:`FORM_FACTORS`."""

# G(x) = sum_i (w_i / A_i) F_i(x)^2 in mol/g (Hubbell & Overbo 1979 atomic form factors).
FORM_FACTORS = {
    "water": (3.663, 3.474, 2.986, 2.369, 1.779, 1.295, 0.9336, 0.5025, 0.3032, 0.2101, 0.163, 0.1363, 0.1051,
              0.08267, 0.05507, 0.02507, 0.01002, 0.004851, 0.001105, 0.000238, 7.094e-05, 1.23e-05, 4.186e-07),
    "soft_tissue": (3.581, 3.38, 2.872, 2.251, 1.674, 1.214, 0.878, 0.4839, 0.303, 0.2168, 0.1711, 0.1431, 0.1075,
                    0.08175, 0.05235, 0.0231, 0.009305, 0.004551, 0.001128, 0.0002882, 0.0001, 2.206e-05, 1.055e-06),
    "lung": (3.613, 3.414, 2.91, 2.288, 1.706, 1.239, 0.8959, 0.4917, 0.3057, 0.2172, 0.1707, 0.1427, 0.1077,
             0.08239, 0.05322, 0.02369, 0.009557, 0.004681, 0.001152, 0.0002887, 9.869e-05, 2.127e-05, 9.838e-07),
    "bone": (5.42, 5.027, 4.192, 3.342, 2.616, 2.036, 1.594, 1.032, 0.7339, 0.5654, 0.4564, 0.3757, 0.2568, 0.1737,
             0.09586, 0.04118, 0.02167, 0.0146, 0.007111, 0.003496, 0.001767, 0.0005663, 4.068e-05),
    "breast": (3.35, 3.145, 2.633, 2.026, 1.481, 1.062, 0.7637, 0.4252, 0.2735, 0.2014, 0.162, 0.1366, 0.1017,
               0.07556, 0.04664, 0.01958, 0.007624, 0.003565, 0.0008163, 0.0001895, 5.996e-05, 1.14e-05, 4.579e-07),
}

LABEL_MATERIALS = {Label.OUTSIDE: "air", Label.LUNG: "lung", Label.SPINE: "bone", Label.RIB: "bone",
                   Label.STERNUM: "bone", Label.BREAST: "breast"}
"""Labels whose material is not soft tissue."""

# Without labels (an XCAT attenuation map), materials by attenuation at 140.5 keV (1/cm): below lung's
# threshold inflated lung (0.26-0.5 g/mL), above bone's bone (1.3 g/mL and up); no attenuation is vacuum.
MU_THRESHOLDS_PER_CM = {"lung": 0.10, "bone": 0.20}


def cross_sections(material: str, energy_kev) -> np.ndarray:
    """Mass attenuation coefficients (cm^2/g) ``(..., 3)``: photoelectric, incoherent, coherent.

    Parameters
    ----------
    material : str
        One of :data:`MATERIALS` other than ``air``.
    energy_kev : float or array
        Photon energies within the tables' range, 60-150 keV.
    """
    if material not in CROSS_SECTIONS_CM2_PER_G:
        raise InvalidParameterError(f"material={material!r} is not allowed: expected one of "
                                    f"{sorted(CROSS_SECTIONS_CM2_PER_G)}")
    energy = np.asarray(energy_kev, dtype=np.float64)
    if np.any(energy < TABLE_KEV[0]) or np.any(energy > TABLE_KEV[-1]):
        raise InvalidParameterError(f"energy_kev outside the tables: expected {TABLE_KEV[0]}-{TABLE_KEV[-1]} keV, "
                                    f"got {energy.min():.1f}-{energy.max():.1f}")
    table = np.log(np.asarray(CROSS_SECTIONS_CM2_PER_G[material]))
    log_e = np.log(energy)
    return np.stack([np.exp(np.interp(log_e, np.log(TABLE_KEV), row)) for row in table], axis=-1)


def form_factor(material: str, x_per_angstrom) -> np.ndarray:
    """``G(x) = sum_i (w_i / A_i) F_i(x)^2`` (mol/g) at momentum transfers ``x`` (1/Angstrom), log-linear
    between the tabulated points."""
    values = np.log(np.asarray(FORM_FACTORS[material]))
    x = np.clip(np.asarray(x_per_angstrom, dtype=np.float64), 0.0, FORM_FACTOR_X[-1])
    return np.exp(np.interp(x, FORM_FACTOR_X, values))


def material_map(mu: np.ndarray, labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Material id (index into :data:`MATERIALS`) and density (g/mL) of every voxel.

    Parameters
    ----------
    mu : ndarray
        Attenuation coefficients at 140.5 keV (1/cm).
    labels : ndarray of int, optional
        :class:`~spectrial.phantoms.Label` values of the same shape; without them materials follow
        :data:`MU_THRESHOLDS_PER_CM`.

    Returns
    -------
    (material, density) : ndarray of uint8 and of float32, shaped like ``mu``. Density is
    ``mu / (mu/rho)(140.5 keV)``, so each voxel keeps its attenuation at the photopeak; voxels without
    attenuation are air (density 0).
    """
    mu = np.asarray(mu, dtype=np.float64)
    if np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise InvalidParameterError("mu has negative or non-finite values: expected attenuation coefficients >= 0 "
                                    "(1/cm)")
    index = {name: i for i, name in enumerate(MATERIALS)}
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != mu.shape:
            raise InvalidParameterError(f"labels has shape {labels.shape}: expected the shape of mu, {mu.shape}")
        lookup = np.full(max(int(labels.max()), max(Label)) + 1, index["soft_tissue"], np.uint8)
        for label, name in LABEL_MATERIALS.items():
            lookup[int(label)] = index[name]
        material = lookup[labels.astype(np.int64)]
    else:
        material = np.full(mu.shape, index["soft_tissue"], np.uint8)
        material[mu < MU_THRESHOLDS_PER_CM["lung"]] = index["lung"]
        material[mu > MU_THRESHOLDS_PER_CM["bone"]] = index["bone"]
    # A partial-volume voxel at the body's edge carries the label of its larger part but some attenuation.
    material[(mu > 0) & (material == index["air"])] = index["soft_tissue"]
    material[mu <= 0] = index["air"]
    density = np.zeros(mu.shape, np.float64)
    for i, name in enumerate(MATERIALS[1:], start=1):
        inside = material == i
        density[inside] = mu[inside] / cross_sections(name, TC99M_KEV).sum()
    return material, density.astype(np.float32)
