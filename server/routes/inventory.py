"""Editing the inventory from the page or a script: admin only (included with `require_admin`,
server/app.py). The logic is in server/inventory_edit.py; docs/inventory.md, "Editing from the page
and the API", is the operator's description.

| route | answer |
| --- | --- |
| `GET /api/inventory/machines` | `{"machines": [entry...], "etag": E, "problems": [...]}`, `ETag: "E"` |
| `GET /api/inventory/machines/{id}` | the entry, header `ETag` (the file's); 404 |
| `POST /api/inventory/machines` | 201 `{"machine": entry, "etag": E2}`; 409 id taken |
| `PUT /api/inventory/machines/{id}` | replace; `{"machine", "etag"}`; 404 |
| `PATCH /api/inventory/machines/{id}` | JSON merge patch (RFC 7396); `{"machine", "etag"}`; 404 |
| `DELETE /api/inventory/machines/{id}` | 204; 404 |
| `POST /api/inventory/import` | YAML or CSV body: adds or replaces by id, all or nothing |

Every change needs `If-Match: "E"`: 428 without, 412 `{"detail", "etag", "current"}` when the file
has changed since. 422 `{"detail": [{"loc", "msg", ...}]}` when the result would not pass
`millwatch check`. Entries are as written in machines.yaml, inline secrets shown as "***".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import Response

from scraper.errors import StoreError
from server.audit import AuditLog
from server.deps import AdminDep, ContextDep, actor_name
from server.inventory_edit import (
    EditBusy,
    EditError,
    EditRefused,
    EditResult,
    FieldProblem,
    InventoryEditor,
    InventoryUnusable,
    MachineExists,
    MachineNotFound,
    PreconditionFailed,
    PreconditionRequired,
    mask_secrets,
)
from server.inventory_import import rows_from_csv, rows_from_yaml
from server.inventory_models import (
    Conflict,
    FieldProblemModel,
    ImportResult,
    InventoryMachines,
    MachineWritten,
    ValidationRefusal,
)
from server.jsonout import json_response
from server.request_body import read_limited

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/inventory", tags=["inventory"])

MAX_ENTRY_BYTES = 64 * 1024
MAX_IMPORT_BYTES = 2 * 1024 * 1024
JSON_TYPES = ("application/json",)
PATCH_TYPES = ("application/merge-patch+json", "application/json")
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
CSV_TYPES = ("text/csv",)
T = TypeVar("T")

_ERRORS = {
    "etag": {"description": "If-Match does not name the current file", "model": Conflict},
    "refused": {"description": "the result would not pass `millwatch check`", "model": ValidationRefusal},
}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": 'the ETag of your last read, quoted: "E"',
}
_ENTRY_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "description": "a machine's entry as written in machines.yaml (docs/inventory.md)",
}


def _body(*types: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the OpenAPI description says of a body the route reads itself (bounded), and If-Match."""
    content = {t: {"schema": schema or _ENTRY_SCHEMA} for t in types}
    return {"parameters": [_IF_MATCH], "requestBody": {"required": True, "content": content}}


WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no machine with this id"},
    409: {"description": "the id is taken, or the file on disk cannot be parsed"},
    412: _ERRORS["etag"],
    422: _ERRORS["refused"],
    428: {"description": "If-Match missing"},
}


def _editor(context: ContextDep) -> InventoryEditor:
    if context.inventory_editor is None or context.audit is None:
        raise HTTPException(status_code=503, detail="no database: inventory changes are audited and need one")
    return context.inventory_editor


def _audit(context: ContextDep) -> AuditLog:
    if context.audit is None:
        raise HTTPException(status_code=503, detail="no database: inventory changes are audited and need one")
    return context.audit


EditorDep = Annotated[InventoryEditor, Depends(_editor)]
AuditDep = Annotated[AuditLog, Depends(_audit)]


@router.get("/machines", response_model=InventoryMachines)
async def list_machines(editor: EditorDep) -> Response:
    snapshot = await _run(editor.snapshot)
    if isinstance(snapshot, Response):
        return snapshot
    body = InventoryMachines(
        machines=[mask_secrets(e) for e in snapshot.entries],
        etag=snapshot.etag,
        problems=[FieldProblemModel.model_validate(p.to_dict()) for p in snapshot.problems],
    )
    return json_response(body.model_dump(), headers=_etag_header(snapshot.etag))


@router.get("/machines/{machine_id}", responses={404: {"description": "no machine with this id"}})
async def get_machine(machine_id: str, editor: EditorDep) -> Response:
    """The machine's entry as written (secrets masked); the ETag header is the whole file's."""
    snapshot = await _run(editor.snapshot)
    if isinstance(snapshot, Response):
        return snapshot
    entry = snapshot.entry(machine_id)
    if entry is None:
        raise HTTPException(status_code=404, detail=f"no machine with id {machine_id!r} in the inventory")
    return json_response(mask_secrets(entry), headers=_etag_header(snapshot.etag))


@router.post(
    "/machines",
    status_code=201,
    response_model=MachineWritten,
    responses=WRITE_RESPONSES,
    openapi_extra=_body("application/json"),
)
async def create_machine(
    request: Request, principal: AdminDep, editor: EditorDep, audit: AuditDep
) -> Response:
    entry = await _json_body(request, JSON_TYPES)
    journal = audit.journal(actor_name(principal))
    result = await _run(editor.create, entry, request.headers.get("if-match"), journal)
    return _written(result, 201)


@router.put(
    "/machines/{machine_id}",
    response_model=MachineWritten,
    responses=WRITE_RESPONSES,
    openapi_extra=_body("application/json"),
)
async def replace_machine(
    machine_id: str, request: Request, principal: AdminDep, editor: EditorDep, audit: AuditDep
) -> Response:
    entry = await _json_body(request, JSON_TYPES)
    journal = audit.journal(actor_name(principal))
    result = await _run(editor.replace, machine_id, entry, request.headers.get("if-match"), journal)
    return _written(result, 200)


@router.patch(
    "/machines/{machine_id}",
    response_model=MachineWritten,
    responses=WRITE_RESPONSES,
    openapi_extra=_body("application/merge-patch+json", "application/json"),
)
async def patch_machine(
    machine_id: str, request: Request, principal: AdminDep, editor: EditorDep, audit: AuditDep
) -> Response:
    patch = await _json_body(request, PATCH_TYPES)
    journal = audit.journal(actor_name(principal))
    result = await _run(editor.patch, machine_id, patch, request.headers.get("if-match"), journal)
    return _written(result, 200)


@router.delete(
    "/machines/{machine_id}",
    status_code=204,
    responses=WRITE_RESPONSES,
    openapi_extra={"parameters": [_IF_MATCH]},
)
async def delete_machine(
    machine_id: str, request: Request, principal: AdminDep, editor: EditorDep, audit: AuditDep
) -> Response:
    journal = audit.journal(actor_name(principal))
    result = await _run(editor.delete, machine_id, request.headers.get("if-match"), journal)
    if isinstance(result, Response):
        return result
    return Response(status_code=204, headers=_etag_header(result.etag))


@router.post(
    "/import",
    response_model=ImportResult,
    responses=WRITE_RESPONSES,
    openapi_extra=_body(*YAML_TYPES[:1], *CSV_TYPES, schema={"type": "string"}),
)
async def import_machines(
    request: Request, principal: AdminDep, editor: EditorDep, audit: AuditDep
) -> Response:
    """Add or replace machines by id from a YAML (`application/yaml`) or CSV (`text/csv`) body, all or
    nothing; 422 names the row and field of each problem. At most 2 MiB and 20,000 machines."""
    kind = _media_type(request)
    if kind not in YAML_TYPES + CSV_TYPES:
        raise HTTPException(status_code=415, detail="send application/yaml or text/csv")
    data = await read_limited(request, MAX_IMPORT_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _refused([FieldProblem((), "the body is not UTF-8 text")])
    parse = rows_from_csv if kind in CSV_TYPES else rows_from_yaml
    try:
        rows = await asyncio.to_thread(parse, text)
    except EditRefused as e:
        return _refused(e.problems)
    journal = audit.journal(actor_name(principal))
    result = await _run(editor.upsert_many, rows, kind in CSV_TYPES, request.headers.get("if-match"), journal)
    if isinstance(result, Response):
        return result
    body = ImportResult(
        created=[c.machine_id for c in result.changes if c.before is None],
        updated=[c.machine_id for c in result.changes if c.before is not None],
        etag=result.etag,
    )
    return json_response(body.model_dump(), headers=_etag_header(result.etag))


# --- helpers ---------------------------------------------------------------------------------------


async def _run(function: Callable[..., T], *args: Any) -> T | Response:
    """Run an editor call in a thread; its refusals become their HTTP answers."""
    try:
        return await asyncio.to_thread(function, *args)
    except EditError as e:
        return _error_response(e)
    except StoreError as e:
        log.error("inventory change not made: the audit cannot be written: %s", e)
        return json_response(
            {"detail": "the audit database cannot be written now: the change was not made"}, 503
        )
    except OSError as e:
        # The file or its folder cannot be written (permissions, a full disk, a read-only mount).
        log.error("inventory change not made: %s", e)
        return json_response({"detail": f"machines.yaml cannot be written: {e.strerror or e}"}, 503)


def _error_response(error: EditError) -> Response:
    if isinstance(error, PreconditionFailed):
        body = Conflict(detail=str(error), etag=error.etag, current=error.current)
        return json_response(body.model_dump(), 412, headers=_etag_header(error.etag))
    if isinstance(error, EditRefused):
        return _refused(error.problems)
    status = {
        PreconditionRequired: 428,
        MachineExists: 409,
        MachineNotFound: 404,
        InventoryUnusable: 409,
        EditBusy: 503,
    }.get(type(error), 500)
    return json_response({"detail": str(error)}, status)


def _refused(problems: list[FieldProblem]) -> Response:
    return json_response({"detail": [p.to_dict() for p in problems]}, 422)


def _written(result: EditResult | Response, status: int) -> Response:
    if isinstance(result, Response):
        return result
    # The entry and ETag of this very write: a later change by someone else is theirs to report.
    body = MachineWritten(machine=mask_secrets(result.entry or {}), etag=result.etag)
    return json_response(body.model_dump(), status, headers=_etag_header(result.etag))


async def _json_body(request: Request, types: tuple[str, ...]) -> Any:
    if _media_type(request) not in types:
        raise HTTPException(status_code=415, detail=f"send {' or '.join(types)}")
    data = await read_limited(request, MAX_ENTRY_BYTES)
    try:
        return json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise HTTPException(
            status_code=422, detail=[{"loc": ["body"], "msg": f"not valid JSON: {str(e)[:200]}"}]
        ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _etag_header(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}
