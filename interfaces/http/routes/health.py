from __future__ import annotations

from fastapi import APIRouter

from interfaces.http.deps import ApiRoute
from interfaces.http.schemas import HealthOut

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/health")
async def health() -> HealthOut:
    """Liveness, without authentication or database work."""
    return HealthOut(status="ok")
