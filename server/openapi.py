"""The application's OpenAPI description, with the live WebSocket's messages among its schemas.

Served at `/api/openapi.json`, and written by `python -m server.openapi [-o FILE]` without a server
or a database. `--typescript FILE` turns it into the page's types with openapi-typescript (from
web/node_modules): `make web-types` writes web/src/api.gen.ts that way, and `make lint` runs it with
`--check`, which fails, naming the command to run, when the checked-in file differs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from server.api_models import LIVE_MODELS
from server.ingest_model import IngestBatch

_REF = "#/components/schemas/{model}"


def describe(app: FastAPI) -> dict[str, Any]:
    """FastAPI's description of `app`, plus the schemas FastAPI cannot see: `server.api_models.LIVE_MODELS`
    (WebSocket messages are no HTTP answer) and the push batch (`POST /api/ingest` reads its body
    by hand)."""
    description = get_openapi(
        title=app.title,
        version=app.version,
        description="The millwatch API. `WS /api/live` sends SnapshotMessage, then UpdateMessage and "
        "PingMessage (see the schemas of those names).",
        routes=app.routes,
    )
    _, extra = models_json_schema(
        [*((m, "serialization") for m in LIVE_MODELS), (IngestBatch, "validation")], ref_template=_REF
    )
    schemas = description.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in extra.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    return description


def install(app: FastAPI) -> None:
    """Make `describe` the description `app` serves (built once, on first request)."""
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(describe(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]


def document() -> dict[str, Any]:
    """The description of the application as `millwatch serve` builds it, without starting it."""
    from scraper.state import FleetState
    from server.app import create_app
    from server.settings import Settings

    app = create_app(Settings(), state=FleetState(), store=None, scraper=None)
    return app.openapi()


WEB_DIR = Path(__file__).resolve().parent.parent / "web"
TYPES_FILE = WEB_DIR / "src" / "api.gen.ts"
REGENERATE = "make web-types"


def typescript(description: dict[str, Any], web_dir: Path = WEB_DIR) -> str:
    """The TypeScript types openapi-typescript makes of `description` (web_dir's node_modules).

    Raises RuntimeError with the tool's message when it cannot run."""
    tool = web_dir / "node_modules" / ".bin" / "openapi-typescript"
    if not tool.exists() or shutil.which("node") is None:
        raise RuntimeError(f"{tool} (or node) not found: run `make install` first")
    with tempfile.TemporaryDirectory(prefix="millwatch-openapi-") as folder:
        source = Path(folder) / "openapi.json"
        target = Path(folder) / "api.gen.ts"
        source.write_text(json.dumps(description, indent=2), encoding="utf-8")
        done = subprocess.run(
            [str(tool), str(source), "--output", str(target)],
            cwd=web_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"openapi-typescript failed: {done.stderr.strip() or done.stdout.strip()}")
        return target.read_text(encoding="utf-8")


def check_types(generated: str, path: Path) -> str | None:
    """None when `path` holds `generated`; else what is wrong and how to fix it, with a short diff."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if current == generated:
        return None
    diff = difflib.unified_diff(
        current.splitlines(),
        generated.splitlines(),
        str(path),
        "generated from the API's models",
        lineterm="",
    )
    lines = list(diff)
    shown = "\n".join(lines[:40]) + ("\n..." if len(lines) > 40 else "")
    return (
        f"{path} is out of date with the API's models (server/api_models.py, scraper/view_model.py): "
        f"run `{REGENERATE}` and commit the file.\n{shown}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.openapi",
        description="Write the millwatch API's OpenAPI description (JSON), or the page's TypeScript types.",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: stdout)")
    parser.add_argument(
        "--typescript",
        type=Path,
        metavar="FILE",
        help=f"write the TypeScript types of the description to FILE (the page's: {TYPES_FILE})",
    )
    parser.add_argument(
        "--check", action="store_true", help="with --typescript: only check that FILE is current"
    )
    args = parser.parse_args(argv)
    description = document()
    if args.typescript is not None:
        try:
            generated = typescript(description)
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.check:
            problem = check_types(generated, args.typescript)
            if problem is not None:
                print(f"error: {problem}", file=sys.stderr)
                return 1
            return 0
        args.typescript.write_text(generated, encoding="utf-8")
        return 0
    text = json.dumps(description, indent=2, ensure_ascii=False) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
