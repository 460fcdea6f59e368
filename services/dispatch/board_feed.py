"""Keeps this worker's unit board current from the unit topics (services/feeds.py).

Every dispatch worker needs every unit, whatever incident partitions it owns: status and
turjawali duties from the beginning (kept forever), positions from the last
SPKT_POSITION_MAX_AGE_S only.
"""
from __future__ import annotations

import asyncio

from schemas.events import UnitPositionReported
from schemas.topics import TURJAWALI, UNIT_POSITIONS, UNIT_STATUS
from services import feeds
from spkt.settings import Settings

from .board import Board


async def follow(settings: Settings, board: Board, caught_up: asyncio.Event) -> None:
    await feeds.follow(settings, name="unit board", from_beginning=(UNIT_STATUS, TURJAWALI), apply=board.apply,
                       caught_up=caught_up, recent={UNIT_POSITIONS: settings.position_max_age_s},
                       typical={UNIT_POSITIONS: UnitPositionReported})
