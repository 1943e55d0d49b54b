"""Training data helpers of ``spectrial train``: the observer's channels on a training crop."""

import numpy as np
import pytest

from spectrial.phantoms import InvalidParameterError
from spectrial.trials.channels import make_channels
from spectrial.trials.training import observer_templates


def test_observer_templates_are_centred_where_the_defect_is_read():
    # A rotationally symmetric band-pass profile peaks at its centre: |h(r)| <= h(0) = the shell's
    # volume in frequency space.
    crop, at = (8, 16, 16), (2.2, 5.0, 11.6)
    templates = observer_templates(make_channels("square"), crop, at)
    assert templates.shape == (4, *crop)
    for template in templates:
        assert np.unravel_index(np.argmax(np.abs(template)), crop) == (2, 5, 12)
    with pytest.raises(InvalidParameterError, match="observer.channels.family"):
        observer_templates(make_channels("gabor"), crop, at)
