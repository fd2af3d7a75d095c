"""監査: the audit trail, read-only, for auditors and admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from application.audit import DEFAULT_LIMIT, MAX_LIMIT, LogQuery
from infrastructure.tokens import Principal
from interfaces.http.access import AUDIT
from interfaces.http.deps import Allow, ApiRoute, ServicesDep
from interfaces.http.problems import problem_responses

router = APIRouter(prefix="/audit", tags=["audit"], route_class=ApiRoute)
Auditor = Annotated[Principal, Depends(Allow(AUDIT))]


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int = Field(
        description="Global position in the log (notification id)", examples=[4711]
    )
    stream_id: UUID = Field(
        description="The aggregate (originator) the record belongs to",
        examples=["c9bf9e57-1685-4c89-bafb-ff5af830be8a"],
    )
    version: int = Field(description="The record's version within its stream", examples=[1])
    type: str = Field(examples=["Participant.Registered"])
    topic: str = Field(examples=["domain.participants:Participant.Registered"])
    recorded_at: datetime | None = Field(
        description="The event's timestamp", examples=["2026-06-14T01:02:03.456789Z"]
    )
    actor_id: str | None = Field(
        description="The token id that recorded it",
        examples=["1c0e5a52-7d3f-4b8e-9a61-0f2d3c4b5a69"],
    )
    actor_role: str | None = Field(examples=["desk"])
    desk_id: str | None = Field(examples=["suge-tablet-2"])
    request_id: str | None = Field(examples=["0b132f3d424a4a528ea279d5eb317ced"])
    payload: dict[str, Any] = Field(
        description='The stored attributes; personal fields only as "[encrypted]", or as '
        '"[erased]" once the participant was erased',
        examples=[
            {
                "originator_topic": "domain.participants:Participant",
                "birth_year": 1950,
                "band_id": None,
                "district_id": "suge",
                "sealed": "[encrypted]",
                "registered_on": "2026-06-14",
                "class_version": 2,
            }
        ],
    )


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null when the log's head was reached",
        examples=[4711],
    )
    head: int = Field(
        description="The log's last position when this page was read", examples=[52340]
    )


class StreamEntryOut(AuditEntryOut):
    corrects: int | None = Field(
        description="The version this one corrects (a revert: the check-in it reverts)",
        examples=[1],
    )
    corrected_by: list[int] = Field(
        description="Later versions that correct this one", examples=[[3]]
    )


class StreamOut(BaseModel):
    stream_id: UUID = Field(examples=["c9bf9e57-1685-4c89-bafb-ff5af830be8a"])
    versions: list[StreamEntryOut]


@router.get(
    "/log",
    responses=problem_responses(401, 403, 422),
    summary="Page through the whole log in order of position, with a cursor",
)
def get_audit_log(
    services: ServicesDep,
    _: Auditor,
    after: Annotated[int, Query(description="Entries after this position")] = 0,
    limit: Annotated[int, Query(description=f"At most this many (1–{MAX_LIMIT})")] = DEFAULT_LIMIT,
    type: Annotated[str | None, Query(description="Event type, e.g. Attendance.CheckedIn")] = None,
    actor: Annotated[str | None, Query(description="Actor (token) id")] = None,
    recorded_from: Annotated[
        str | None,
        Query(alias="from", description="Recorded at or after (ISO 8601; a bare date is JST)"),
    ] = None,
    recorded_to: Annotated[
        str | None,
        Query(alias="to", description="Recorded at or before (a bare date: to its end, JST)"),
    ] = None,
) -> AuditPageOut:
    query = LogQuery.parse(
        after=after,
        limit=limit,
        type=type,
        actor=actor,
        recorded_from=recorded_from,
        recorded_to=recorded_to,
    )
    page = services.audit.log(query)
    return AuditPageOut(
        entries=[AuditEntryOut.model_validate(entry) for entry in page.entries],
        next_after=page.next_after,
        head=page.head,
    )


@router.get(
    "/streams/{stream_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="The whole history of one aggregate, corrections next to what they correct",
)
def get_audit_stream(services: ServicesDep, _: Auditor, stream_id: UUID) -> StreamOut:
    versions = services.audit.stream(stream_id)
    return StreamOut(
        stream_id=stream_id,
        versions=[StreamEntryOut.model_validate(entry) for entry in versions],
    )
