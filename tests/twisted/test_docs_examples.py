"""
Every ```python block of the user documentation runs, in its own process,
and exits 0 (the examples end with assertions on what they show).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.twisted.clitools import REPOSITORY, environment

DOCS = ["quickstart.md", "endpoints.md", "twistd.md", "port.md", "features.md", "security.md", "engine.md"]


def pythonBlocks(name: str) -> list[str]:
    with open(os.path.join(REPOSITORY, "docs", name), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


EXAMPLES = [(name, i, block) for name in DOCS for i, block in enumerate(pythonBlocks(name))]


def test_everyPageHasAnExample():
    assert {name for name, _, _ in EXAMPLES} == set(DOCS)


@pytest.mark.parametrize("name, index, code", EXAMPLES, ids=[f"{n}-{i}" for n, i, _ in EXAMPLES])
def test_example(name, index, code, tmp_path):
    script = tmp_path / f"example_{index}.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        ["timeout", "-k", "2", "60", sys.executable, "-W", "error", str(script)],
        capture_output=True, env=environment(), cwd=REPOSITORY, timeout=70,
    )
    assert result.returncode == 0, f"{name} example {index} failed:\n{result.stdout.decode()}\n{result.stderr.decode()}"
    if name == "quickstart.md":
        assert result.stdout == b"negotiated DTLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n"
