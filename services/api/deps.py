"""Annotated dependencies shared by the routes."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from spkt.settings import Settings

from .auth import Principal, Role, allow, app_settings
from .publisher import Publisher


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Opening and closing a session only takes and returns a pooled connection: no thread needed
    # (auth.current_principal says why that matters). The queries run in the route's thread.
    with request.app.state.sessions() as session:
        yield session


async def get_publisher(request: Request) -> Publisher:
    return request.app.state.publisher


SessionDep = Annotated[Session, Depends(get_session)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
SettingsDep = Annotated[Settings, Depends(app_settings)]

R = Role
ReportWriter = Annotated[Principal, Depends(allow(R.call_taker, R.dispatcher, R.field_unit, R.admin))]
IncidentReader = Annotated[Principal, Depends(allow(R.call_taker, R.dispatcher, R.field_unit, R.supervisor,
                                                    R.command_center, R.admin))]
AnyRole = Annotated[Principal, Depends(allow(*Role))]
Decider = Annotated[Principal, Depends(allow(R.dispatcher, R.supervisor, R.admin))]
Dispatcher = Annotated[Principal, Depends(allow(R.dispatcher, R.admin))]
Supervisor = Annotated[Principal, Depends(allow(R.supervisor, R.command_center, R.admin))]
BoardReader = Annotated[Principal, Depends(allow(R.dispatcher, R.supervisor, R.command_center, R.admin))]
Admin = Annotated[Principal, Depends(allow(R.admin))]
UnitActor = Annotated[Principal, Depends(allow(R.field_unit, R.dispatcher, R.admin))]
PositionWriter = Annotated[Principal, Depends(allow(R.field_unit, R.admin))]
BackupRequester = Annotated[Principal, Depends(allow(R.field_unit, R.dispatcher, R.admin))]
