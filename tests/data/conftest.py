"""The shared sparsenet images, loaded once per test module that asks for them."""

import pytest
from helpers import SPARSENET_DIR
from helpers import require as _require

from saejax.data import load_sparsenet


@pytest.fixture(scope="module")
def sparsenet_images():
    _require(SPARSENET_DIR)
    return load_sparsenet(SPARSENET_DIR)
