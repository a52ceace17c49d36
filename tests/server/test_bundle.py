"""`millwatch bundle`: the offline machine package, built from a local wheel folder (no registry).

The Linux zip is installed for real: unzipped, `install.sh --no-service` into a fresh venv with
`--no-index`, the exporter started on a pseudo-terminal sensor and scraped over loopback. Windows
cannot run here, so the Windows zip is checked by its contents: wheel tags, the exporter wheel's
files and metadata, and the commands and paths of INSTALL.bat, UNINSTALL.bat and their helpers.

The wheel folders are filled once by `make bundle-wheels` (part of `make test`); run alone without
them, these tests are skipped with that reason.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from packaging.utils import parse_wheel_filename
from ruamel.yaml import YAML
from support import free_port, run_millwatch, wait_until

from exporter.simulator import SimulatedSensor
from server.bundle_targets import Target
from server.bundle_wheels import check_wheels
from server.errors import WheelMismatch

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".cache" / "bundle-wheels"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
LINUX_WHEELS = WHEELS / f"linux_x86_64-cp{sys.version_info.major}{sys.version_info.minor}"
WINDOWS_WHEELS = WHEELS / "win_amd64-cp39"
EXPORTER_DEPENDENCIES = {"psutil", "pyserial", "ruamel-yaml"}
# The flags of `millwatch-exporter init` that INSTALL.bat and install.sh use (the init command's contract).
INIT_FLAGS = [
    "--output",
    "--machine-id",
    "--name",
    "--serial-port",
    "--baudrate",
    "--listen",
    "--central-host",
    "--non-interactive",
    "--force",
]
MAX_WINDOWS_ZIP_BYTES = 600 * 1024


def _wheel_folder(folder: Path) -> Path:
    if not any(folder.glob("*.whl")):
        pytest.skip(f"{folder} has no wheels: run `make bundle-wheels` once (make test does)")
    return folder


def _bundle(platform: str, python: str, wheels: Path, out: Path) -> zipfile.ZipFile:
    result = run_millwatch(
        [
            "bundle",
            "--platform",
            platform,
            "--python-version",
            python,
            "-o",
            str(out),
            "--wheels",
            str(wheels),
        ],
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    (zip_path,) = out.glob("*.zip")
    assert f"wrote {zip_path}" in result.stdout
    return zipfile.ZipFile(zip_path)


def test_the_linux_bundle_installs_offline_and_serves_metrics(tmp_path: Path) -> None:
    archive = _bundle("linux_x86_64", PYTHON, _wheel_folder(LINUX_WHEELS), tmp_path / "out")
    archive.extractall(tmp_path / "usb")
    (folder,) = (tmp_path / "usb").iterdir()
    assert folder.name == f"millwatch-exporter-0.1.0-linux_x86_64-py{PYTHON}"

    with SimulatedSensor(interval=0.1, seed=3) as sensor:
        assert sensor.path is not None
        port = free_port()
        # The configuration a technician writes from the bundle's example: only the values change.
        yaml = YAML()
        config = yaml.load((folder / "exporter.example.yaml").read_text(encoding="utf-8"))
        config["machine"]["id"] = "press_07"
        config["machine"]["name"] = "Press 07"
        config["serial"]["port"] = sensor.path
        config["listen"] = f"127.0.0.1:{port}"
        written = io.StringIO()
        yaml.dump(config, written)
        prepared = tmp_path / "exporter.yaml"
        prepared.write_text(written.getvalue(), encoding="utf-8")

        prefix, etc = tmp_path / "opt", tmp_path / "etc"
        install = subprocess.run(
            ["sh", str(folder / "install.sh"), "--no-service", "--prefix", str(prefix)]
            + ["--config-dir", str(etc), "--config", str(prepared), "--python", sys.executable],
            capture_output=True,
            text=True,
            timeout=300,
            # No registry: were pip to try one, this proxy address refuses at once.
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_PROXY": "http://127.0.0.1:9"},
        )
        assert install.returncode == 0, install.stdout + install.stderr
        assert "[3/5] Configuration" in install.stdout
        assert f"{prefix}/venv/bin/millwatch-exporter --config {etc}/exporter.yaml" in install.stdout

        venv_python = prefix / "venv" / "bin" / "python"
        listed = subprocess.run(
            [str(venv_python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        installed = {
            line.split("==")[0].lower().replace("_", "-").replace(".", "-") for line in listed.stdout.split()
        }
        assert installed - {"pip", "setuptools"} == {"millwatch-exporter", *EXPORTER_DEPENDENCIES}
        central = subprocess.run(
            [str(venv_python), "-c", "import scraper"], capture_output=True, timeout=60, cwd=tmp_path
        )
        assert central.returncode != 0, "the machine PC's venv must not hold the central packages"

        exporter = subprocess.Popen(
            [str(prefix / "venv" / "bin" / "millwatch-exporter"), "--config", str(etc / "exporter.yaml")]
            + ["--buffer-path", str(tmp_path / "buffer.sqlite")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        try:
            helper = subprocess.run(
                [str(venv_python), str(prefix / "setup_helper.py"), "wait", str(etc / "exporter.yaml")],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert helper.returncode == 0, helper.stderr
            assert f"Status page: http://127.0.0.1:{port}/" in helper.stdout

            def temperature() -> float | None:
                body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                found = re.search(r"^machine_temperature_celsius (\S+)$", body, re.MULTILINE)
                assert 'machine_info{machine_id="press_07",name="Press 07"} 1.0' in body
                return float(found.group(1)) if found else None

            value = wait_until(temperature, timeout=60, what="a temperature reading on /metrics")
            assert 40 < value < 90
        finally:
            exporter.send_signal(signal.SIGTERM)
            try:
                exporter.wait(timeout=20)
            except subprocess.TimeoutExpired:
                exporter.kill()
                exporter.wait()
    assert exporter.returncode == 0, exporter.stderr.read() if exporter.stderr else ""


def test_the_linux_bundle_has_install_sh_and_a_hardened_systemd_unit(tmp_path: Path) -> None:
    archive = _bundle("linux_x86_64", PYTHON, _wheel_folder(LINUX_WHEELS), tmp_path)
    names = {Path(name).name: name for name in archive.namelist()}
    assert {"install.sh", "uninstall.sh", "millwatch-exporter.service", "exporter.example.yaml"} <= set(names)
    assert "INSTALL.bat" not in names
    assert archive.getinfo(names["install.sh"]).external_attr >> 16 & 0o111, "install.sh is executable"
    unit = archive.read(names["millwatch-exporter.service"]).decode()
    for option in (
        "User=millwatch-exporter",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "StateDirectory=millwatch-exporter",
        "WantedBy=multi-user.target",
    ):
        assert option in unit
    assert "ExecStart=__PREFIX__/venv/bin/millwatch-exporter --config __CONFIG__ " in unit
    install = archive.read(names["install.sh"]).decode()
    assert "s|__PREFIX__|$PREFIX|g" in install and "s|__CONFIG__|$CONFIG|g" in install
    assert 'pip install --quiet --no-index \\\n    --find-links "$HERE/wheels" millwatch-exporter' in install
    assert _init_flags(install) == INIT_FLAGS

    # systemd's own checker accepts the unit as install.sh writes it.
    verify = shutil.which("systemd-analyze")
    if verify is not None:
        binary = tmp_path / "opt" / "venv" / "bin" / "millwatch-exporter"
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        unit_file = tmp_path / "millwatch-exporter.service"
        unit_file.write_text(
            unit.replace("__PREFIX__", str(tmp_path / "opt")).replace("__CONFIG__", str(tmp_path / "e.yaml"))
        )
        checked = subprocess.run(
            [verify, "verify", str(unit_file)], capture_output=True, text=True, timeout=60
        )
        problems = [line for line in checked.stderr.splitlines() if "millwatch-exporter.service" in line]
        assert problems == [], checked.stderr


def test_the_windows_bundle_holds_fitting_wheels_and_the_installer(tmp_path: Path) -> None:
    """Windows cannot run here: INSTALL.bat and its helpers are checked by their text, not run."""
    archive = _bundle("win_amd64", "3.9", _wheel_folder(WINDOWS_WHEELS), tmp_path)
    zip_path = Path(archive.filename or "")
    assert zip_path.name == "millwatch-exporter-0.1.0-win_amd64-py3.9.zip"
    again = _bundle("win_amd64", "3.9", WINDOWS_WHEELS, tmp_path / "again")
    assert Path(again.filename or "").read_bytes() == zip_path.read_bytes(), (
        "the same inputs give the same zip"
    )
    assert zip_path.stat().st_size <= MAX_WINDOWS_ZIP_BYTES, f"{zip_path.stat().st_size} bytes"
    root = "millwatch-exporter-0.1.0-win_amd64-py3.9/"
    names = archive.namelist()
    assert all(name.startswith(root) for name in names)
    files = {name[len(root) :] for name in names}
    assert {
        "INSTALL.bat",
        "UNINSTALL.bat",
        "millwatch-task.ps1",
        "run-exporter.cmd",
        "setup_helper.py",
    } <= files
    assert "install.sh" not in files

    wheels = sorted(name[len(root) + len("wheels/") :] for name in names if name.startswith(root + "wheels/"))
    assert {parse_wheel_filename(w)[0] for w in wheels} == {"millwatch-exporter", *EXPORTER_DEPENDENCIES}
    for wheel in wheels:
        for tag in parse_wheel_filename(wheel)[3]:
            assert tag.platform in ("win_amd64", "any"), wheel
            assert _fits_cp39(tag.interpreter, tag.abi), wheel

    exporter_wheel = next(w for w in wheels if w.startswith("millwatch_exporter-"))
    with zipfile.ZipFile(io.BytesIO(archive.read(root + "wheels/" + exporter_wheel))) as inner:
        packages = {name.split("/")[0] for name in inner.namelist()}
        metadata = inner.read("millwatch_exporter-0.1.0.dist-info/METADATA").decode()
        entry_points = inner.read("millwatch_exporter-0.1.0.dist-info/entry_points.txt").decode()
    assert packages == {"exporter", "millwatch_common", "millwatch_exporter-0.1.0.dist-info"}
    requires = {
        re.split(r"[<>=!~; ]", line.split(": ", 1)[1])[0]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    }
    assert requires == EXPORTER_DEPENDENCIES
    assert "Requires-Python: >=3.9" in metadata
    assert "millwatch-exporter = exporter.cli:main" in entry_points

    install = archive.read(root + "INSTALL.bat").decode()
    uninstall = archive.read(root + "UNINSTALL.bat").decode()
    task = archive.read(root + "millwatch-task.ps1").decode()
    loop = archive.read(root + "run-exporter.cmd").decode()
    for text in (install, uninstall, task, loop):
        assert "\r\n" in text and "\n" not in text.replace("\r\n", ""), "Windows scripts need CRLF line ends"
    install = install.replace("\r\n", "\n")
    assert 'set "PY=py -3.9"' in install and 'if errorlevel 1 set "PY=py -3"' in install
    assert '%PY% -m venv "%VENV%"' in install
    assert (
        '"%PYEXE%" -m pip install --quiet --no-index --find-links "%HERE%wheels" millwatch-exporter'
        in install
    )
    assert _init_flags(install) == INIT_FLAGS
    assert '"%EXE%" init --output "%CONFIG%" ' in install
    assert "netsh advfirewall firewall add rule" in install and "localport=%MW_PORT%" in install
    assert "net session" in install, "it checks for administrator rights"
    assert 'icacls "%DATA%" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F' in install
    assert (
        '-File "%HERE%millwatch-task.ps1"' in install and '-Program "%TARGET%\\run-exporter.cmd"' in install
    )
    assert "New-ScheduledTaskTrigger -AtStartup" in task and "-RestartCount" in task
    assert "-ExecutionTimeLimit ([TimeSpan]::Zero)" in task and "-UserId 'SYSTEM'" in task
    assert '"%~dp0venv\\Scripts\\millwatch-exporter.exe" --config "%DATA%\\exporter.yaml"' in loop
    assert "goto loop" in loop
    # Every file INSTALL.bat takes from the bundle is in it, every label it jumps to exists.
    for used in re.findall(r"%HERE%([\w.\-\\]+)", install):
        assert used.replace("\\", "/") in files or used == "wheels", used
    _check_labels(install)
    _check_labels(uninstall.replace("\r\n", "\n"))
    # The task's loop, the installer and the uninstaller agree on where things are.
    for script in (install, loop, uninstall):
        assert 'set "DATA=%ProgramData%\\millwatch-exporter"' in script.replace("\r\n", "\n")
    assert 'set "TARGET=%ProgramFiles%\\millwatch-exporter"' in uninstall
    assert 'set "EXE=%VENV%\\Scripts\\millwatch-exporter.exe"' in install
    # UNINSTALL.bat removes what INSTALL.bat made, under the same names.
    for name in ('set "TASK=millwatch-exporter"', 'set "RULE=millwatch-exporter"'):
        assert name in install and name in uninstall
    assert 'schtasks /Delete /TN "%TASK%" /F' in uninstall
    assert 'netsh advfirewall firewall delete rule name="%RULE%"' in uninstall
    assert 'rmdir /S /Q "%TARGET%"' in uninstall


def test_a_wheel_folder_without_a_fitting_wheel_is_refused_clearly(tmp_path: Path) -> None:
    linux_only = tmp_path / "wheels"
    shutil.copytree(_wheel_folder(LINUX_WHEELS), linux_only)
    result = run_millwatch(
        ["bundle", "--platform", "win_amd64", "--python-version", "3.9", "-o", str(tmp_path / "out")]
        + ["--wheels", str(linux_only)],
        timeout=180,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"millwatch: error: no wheel of psutil>=5.9 for win_amd64 with CPython 3.9 in {linux_only}"
    )
    assert "--download-to DIR" in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "no zip is left behind"


def test_a_wheel_that_does_not_fit_the_platform_is_named() -> None:
    linux = Path("psutil-7.1.1-cp36-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    with pytest.raises(WheelMismatch) as caught:
        check_wheels([Path("pyserial-3.5-py2.py3-none-any.whl"), linux], Target("win_amd64", "3.9"))
    assert str(caught.value).startswith(f"{linux.name} does not fit win_amd64 with CPython 3.9")
    with pytest.raises(
        WheelMismatch, match="cp312-cp312-win_amd64.whl does not fit win_amd64 with CPython 3.9"
    ):
        check_wheels([Path("psutil-7.0.0-cp312-cp312-win_amd64.whl")], Target("win_amd64", "3.9"))
    check_wheels([Path("psutil-7.0.0-cp37-abi3-win_amd64.whl")], Target("win_amd64", "3.9"))


def test_bundle_help_and_bad_arguments() -> None:
    helped = run_millwatch(["bundle", "--help"])
    assert helped.returncode == 0 and "--python-version" in helped.stdout and "--wheels" in helped.stdout
    bad = run_millwatch(["bundle", "--platform", "win_amd64", "--python-version", "3.8", "-o", "x"])
    assert bad.returncode == 2 and "invalid choice: '3.8'" in bad.stderr
    missing = run_millwatch(["bundle", "--platform", "win_amd64", "--python-version", "3.9"])
    assert (missing.returncode, missing.stderr) == (
        2,
        "millwatch: error: bundle: give -o DIR (the folder to write the zip into) or --download-to DIR\n",
    )


def _init_flags(script: str) -> list[str]:
    call = script[script.index(" init --output") :]
    return re.findall(r"(--[a-z-]+)", call[: call.index("--force") + len("--force")])


def _fits_cp39(interpreter: str, abi: str) -> bool:
    if abi == "none":
        return interpreter in ("py3", "py2", "py39", "cp39") or interpreter.startswith("py3")
    if abi == "abi3":
        return interpreter.startswith("cp3") and int(interpreter[3:]) <= 9
    return (interpreter, abi) == ("cp39", "cp39")


def _check_labels(script: str) -> None:
    labels = set(re.findall(r"^:(\w+)", script, re.MULTILINE))
    for target in re.findall(r"goto :?(\w+)", script):
        assert target in labels, f"goto {target}: no such label"


def test_install_sh_refuses_unknown_options_and_needs_root_for_the_service(tmp_path: Path) -> None:
    archive = _bundle("linux_x86_64", PYTHON, _wheel_folder(LINUX_WHEELS), tmp_path / "out")
    archive.extractall(tmp_path / "usb")
    (folder,) = (tmp_path / "usb").iterdir()
    unknown = subprocess.run(
        ["sh", str(folder / "install.sh"), "--colour"], capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("install.sh: error: unknown option --colour\nusage: sh install.sh")
    missing = subprocess.run(
        ["sh", str(folder / "install.sh"), "--prefix"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "--prefix needs a value" in missing.stderr
    if os.geteuid() != 0:
        as_user = subprocess.run(
            ["sh", str(folder / "install.sh")], capture_output=True, text=True, timeout=60
        )
        assert as_user.returncode == 1 and "run it as root" in as_user.stderr
