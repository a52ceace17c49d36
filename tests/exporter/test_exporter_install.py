"""The exporter's install needs only its three dependencies and the standard library.

`make test` runs tests/exporter a second time under Python 3.9, in a venv holding only the
exporter's wheel (from the offline bundle) and its dependencies: there this test proves that every
module of the exporter and of millwatch_common imports on 3.9 with nothing from the central side.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

# Third-party top-level packages the exporter may load: its base dependencies.
ALLOWED = {"serial", "psutil", "ruamel", "_ruamel_yaml"}
CENTRAL = {"scraper", "server", "fastapi", "pydantic", "sqlalchemy", "httpx", "apscheduler", "uvicorn"}

PROBE = """
import importlib, json, pkgutil, sys, sysconfig
before = set(sys.modules)
import exporter, millwatch_common
names = []
for package in (exporter, millwatch_common):
    names.append(package.__name__)
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        names.append(module.name)
for name in names:
    importlib.import_module(name)
paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
loaded = {}
for name in set(sys.modules) - before:
    top = name.partition(".")[0]
    origin = getattr(sys.modules[name], "__file__", None) or ""
    if top not in ("exporter", "millwatch_common") and any(origin.startswith(p) for p in paths):
        loaded[top] = origin
print(json.dumps({"modules": names, "third_party": sorted(loaded), "all": sorted(set(sys.modules))}))
"""


def test_every_exporter_module_imports_with_only_the_exporter_dependencies(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert "exporter.cli" in found["modules"] and "millwatch_common.durations" in found["modules"]
    assert set(found["third_party"]) <= ALLOWED, found["third_party"]
    tops = {name.partition(".")[0] for name in found["all"]}
    assert not tops & CENTRAL, sorted(tops & CENTRAL)


def test_the_exporter_only_venv_holds_nothing_of_the_central_side() -> None:
    """In the 3.9 run (MILLWATCH_EXPORTER_ONLY=1) the tests use the installed wheel, alone."""
    if os.environ.get("MILLWATCH_EXPORTER_ONLY") != "1":
        return  # the central venv holds everything by design; the 3.9 run of make test checks this
    import exporter

    assert "site-packages" in (exporter.__file__ or ""), (
        f"tests imported {exporter.__file__}, not the install"
    )
    assert sys.version_info[:2] == (3, 9)
    # tests/scraper and tests/server are on sys.path as namespace folders (no origin): not packages.
    present = sorted(name for name in CENTRAL if getattr(importlib.util.find_spec(name), "origin", None))
    assert present == [], f"the exporter-only venv holds {present}"
