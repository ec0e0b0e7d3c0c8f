from __future__ import annotations

import pytest

from tests.certs import make_pki, write_pem_files


@pytest.fixture(scope="session")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def pem(pki, tmp_path_factory):
    return write_pem_files(pki, tmp_path_factory.mktemp("pem"))
