"""What the projection formats share: views ordered by angle around the circle, energy windows in keV,
superior-first rows, and numbers written as text that read back exactly."""

from decimal import Decimal

import numpy as np
import pytest

from spectrial.phantoms.errors import FileFormatError
from spectrial.simulate import Protocol
from spectrial.simulate.formats.acquisition import (classify_windows, decimal, from_disk, order_views, to_disk,
                                                    window_fractions, window_limits_kev, wrap_deg)


def test_angles_wrap_into_0_360_and_floats_keep_their_shortest_decimal():
    assert [wrap_deg(Decimal(a)) for a in (-45, 360, 725, -360.5)] == [315, 0, 5, Decimal("359.5")]
    assert decimal(0.1) == Decimal("0.1") and float(decimal(2 / 3)) == 2 / 3


def test_views_are_ordered_from_the_start_of_the_arc():
    # A 180 deg arc of 4 views from -45 deg (45 RAO), stored in the file out of order: the largest gap
    # around the circle (the unscanned half) ends at -45, which comes first, in (-180, 180].
    angles = [Decimal(a) for a in (45, -45, 90, 0)]
    order, ordered = order_views(angles, Decimal(45))
    assert order.tolist() == [1, 3, 0, 2] and ordered.tolist() == [-45.0, 0.0, 45.0, 90.0]
    # A full circle evenly covered starts at the file's first view.
    order, ordered = order_views([Decimal(a) for a in (270, 0, 90, 180)], Decimal(90))
    assert order.tolist() == [0, 1, 2, 3] and ordered.tolist() == [-90.0, 0.0, 90.0, 180.0]


def test_the_asnc_windows_in_kev_and_back():
    # A 20 % photopeak on 140.5 keV is 126.45-154.55 keV; 3 % side windows are 4.215 keV wide.
    limits = window_limits_kev(Protocol())
    assert limits["photopeak"] == (Decimal("126.45"), Decimal("154.55"))
    assert limits["lower"] == (Decimal("122.235"), Decimal("126.45"))
    assert limits["upper"] == (Decimal("154.55"), Decimal("158.765"))
    assert window_fractions("f", limits, "windows") == {"photopeak_window": 0.2, "scatter_window": 0.03}
    assert classify_windows("f", [limits["upper"], limits["photopeak"], limits["lower"]], "w") == ["upper",
                                                                                                  "photopeak", "lower"]


def test_windows_spectrial_cannot_model_are_refused_naming_the_file_and_key():
    with pytest.raises(FileFormatError, match="a.dcm: EnergyWindowInformationSequence: .*140.5"):
        window_fractions("a.dcm", {"photopeak": (Decimal(130), Decimal(170))}, "EnergyWindowInformationSequence")
    with pytest.raises(FileFormatError, match="adjoin"):
        window_fractions("a.dcm", {"photopeak": (Decimal("126.45"), Decimal("154.55")),
                                   "lower": (Decimal(110), Decimal(120))}, "windows")
    with pytest.raises(FileFormatError, match="one photopeak"):
        classify_windows("a.dcm", [(Decimal(100), Decimal(110))], "windows")


def test_rows_go_to_disk_superior_first_and_come_back():
    counts = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    disk = to_disk(counts)
    np.testing.assert_array_equal(disk[:, 0], counts[:, -1])  # the first stored row is the highest z
    np.testing.assert_array_equal(from_disk(disk), counts)
