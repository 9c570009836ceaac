import os

import numpy as np
import pytest

import kmaot


def pytest_report_header(config):
    c = kmaot.config()
    return (f"kmaot {c['version']} from {os.path.dirname(kmaot.__file__)}; CPU level "
            f"{c['cpu_level']} (usable: {', '.join(c['cpu_levels_supported'])})")


@pytest.fixture
def blobs():
    """Well separated float64 blobs: (X, true centers)."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(-20, 20, size=(6, 5))
    labels = rng.integers(6, size=3000)
    X = centers[labels] + rng.standard_normal((3000, 5))
    return X, centers
