"""JSON output for the API and the WebSocket.

Readings may be NaN or ±Inf (the Prometheus format allows them); JSON has no such numbers and a
browser's `JSON.parse` rejects the `NaN` that Python's json module would write. They are sent as
null, the only faithful JSON value for "no number".
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.responses import Response


def finite(value: Any) -> Any:
    """`value` with every non-finite float (NaN, +Inf, -Inf), at any depth, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """Compact JSON text of `value`, non-finite floats written as null."""
    # Non-finite numbers are rare (readings are finite by construction) and walking a 10,000-machine
    # answer to replace them cost as much as encoding it: encode first, replace only when refused.
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(finite(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def json_response(value: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response whose body is `dumps(value)`."""
    return Response(dumps(value), status_code=status_code, media_type="application/json", headers=headers)
