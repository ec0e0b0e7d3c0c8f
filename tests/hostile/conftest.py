from __future__ import annotations

import pytest

from tests.certs import make_pki
from tests.twisted.memorynet import MemoryNetwork


@pytest.fixture(scope="session")
def pki():
    return make_pki()


@pytest.fixture
def network():
    return MemoryNetwork()
