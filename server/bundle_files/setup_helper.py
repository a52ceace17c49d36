"""Installer helper of the millwatch exporter bundle (run by INSTALL.bat and install.sh with the
exporter's venv Python, 3.9 or newer):

    python setup_helper.py check CONFIG            is the configuration valid? (its problem, exit 2)
    python setup_helper.py port CONFIG             the TCP port the exporter will listen on
    python setup_helper.py wait CONFIG [--timeout S]  wait until the exporter answers /healthz,
                                                   then print the status page's address
"""

from __future__ import annotations

import argparse
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from exporter.config import load_config
from exporter.errors import ConfigError


def main() -> int:
    parser = argparse.ArgumentParser(prog="setup_helper.py")
    parser.add_argument("action", choices=("check", "port", "wait"))
    parser.add_argument("config")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.action == "check":
        print(f"      {args.config}: valid (machine {config.machine.id}, serial port {config.serial.port})")
        return 0
    if args.action == "port":
        print(config.listen.port)
        return 0
    return wait_for_exporter(config, args.timeout)


def wait_for_exporter(config: Any, timeout: float) -> int:
    """Poll /healthz on this PC until it answers 200 or `timeout` seconds pass (exit 0 or 1)."""
    host = config.listen.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1" if host != "::" else "::1"
    if ":" in host:
        host = f"[{host}]"
    web = getattr(config, "web", None)
    scheme = "https" if getattr(web, "tls_cert_file", None) else "http"
    # The check talks to this very PC over loopback; the certificate is checked by the scrapers.
    context = ssl._create_unverified_context() if scheme == "https" else None
    base = f"{scheme}://{host}:{config.listen.port}"
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5, context=context) as response:
                if response.status == 200:
                    print(f"      the exporter answers. Status page: {base}/   Metrics: {base}/metrics")
                    return 0
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        time.sleep(1.0)
    print(f"error: no answer from {base}/healthz within {timeout:.0f} s ({last})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
