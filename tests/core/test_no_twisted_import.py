"""
The sans-IO engine (twisted_dtls.core) must never import Twisted.

Each check runs in a fresh interpreter, so modules imported by the test run
itself cannot hide or fake an import. The module list comes from pkgutil,
so modules added to the package later are covered too.
"""

import os
import pkgutil
import subprocess
import sys

import pytest

import twisted_dtls.core

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHECK = (
    "import sys\n"
    "{imports}\n"
    "leaked = sorted(m for m in sys.modules if m == 'twisted' or m.startswith('twisted.'))\n"
    "assert not leaked, leaked\n"
)


def core_modules():
    return sorted(
        "twisted_dtls.core." + info.name for info in pkgutil.iter_modules(twisted_dtls.core.__path__)
    )


def run_check(modules):
    imports = "\n".join(f"import {name}" for name in modules)
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", CHECK.format(imports=imports)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_core_modules_found():
    modules = core_modules()
    for expected in ("constants", "records", "protection", "replay", "recordlayer"):
        assert f"twisted_dtls.core.{expected}" in modules


@pytest.mark.parametrize("module", ["twisted_dtls.core"] + core_modules())
def test_no_core_module_imports_twisted(module):
    # One interpreter per module, so a failure names the module at fault.
    result = run_check([module])
    assert result.returncode == 0, result.stderr


def test_check_detects_a_twisted_import():
    # The same check must fail when something imports Twisted.
    result = run_check(["twisted_dtls.core.records", "twisted.internet.defer"])
    assert result.returncode != 0
    assert "twisted.internet" in result.stderr
