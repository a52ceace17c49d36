"""Dependencies shared by the routes, as `Annotated` aliases (HTTP and WebSocket routes alike)."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from scraper.state import FleetState
from scraper.store import Store
from server.context import ServerContext
from server.live import LiveHub
from server.settings import Settings


def get_context(connection: HTTPConnection) -> ServerContext:
    return cast(ServerContext, connection.app.state.millwatch)


ContextDep = Annotated[ServerContext, Depends(get_context)]


def get_state(context: ContextDep) -> FleetState:
    return context.state


def get_store(context: ContextDep) -> Store | None:
    return context.store


def get_hub(context: ContextDep) -> LiveHub:
    return context.hub


def get_settings(context: ContextDep) -> Settings:
    return context.settings


StateDep = Annotated[FleetState, Depends(get_state)]
StoreDep = Annotated[Store | None, Depends(get_store)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
