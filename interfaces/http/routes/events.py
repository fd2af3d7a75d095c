from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from application.views import AttendanceStatus, CheckInView, EventView, WalkInView
from infrastructure.tokens import Principal
from interfaces.http.access import FRONT_DESK, READ_RECORDS, SCHEDULING
from interfaces.http.deps import (
    Actor,
    Allow,
    AllowCommand,
    ApiRoute,
    AppDep,
    CheckInDep,
    ServicesDep,
    read_in_thread,
)
from interfaces.http.problems import problem_responses
from interfaces.http.routes.common import answer
from interfaces.http.schemas import (
    CheckInIn,
    CheckInListOut,
    EventIn,
    ReasonIn,
    RescheduleIn,
    RosterEntryOut,
    WalkInEntryOut,
    WalkInListOut,
    WalkInsIn,
)
from projections.roster import walk_ins_by_band

router = APIRouter(prefix="/events", tags=["events"], route_class=ApiRoute)
attendance = APIRouter(prefix="/events/{event_id}", tags=["attendance"], route_class=ApiRoute)

Reader = Annotated[Principal, Depends(Allow(READ_RECORDS))]
Scheduler = Annotated[Actor, Depends(AllowCommand(SCHEDULING))]
Desk = Annotated[Actor, Depends(AllowCommand(FRONT_DESK))]


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Schedule an event (開催回) of a programme",
)
def schedule_event(body: EventIn, response: Response, app: AppDep, actor: Scheduler) -> EventView:
    outcome = app.schedule_event(
        program_id=body.program_id,
        title=body.title,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        district_id=body.district_id,
        venue=body.venue,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome, location=f"/events/{outcome.result.id}")


@router.get("/{event_id}", responses=problem_responses(401, 403, 404, 422))
async def get_event(event_id: UUID, app: AppDep, _: Reader) -> EventView:
    # A coroutine with the query in a reader thread: FastAPI runs a plain function route in
    # its thread pool, then its response's validation in the pool again, two hops instead
    # of one (the GETs of organisations, programmes and participants do the same).
    return await read_in_thread(app.get_event, event_id)


@router.post(
    "/{event_id}/reschedule",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Move a scheduled event to another time",
)
def reschedule_event(
    event_id: UUID, body: RescheduleIn, response: Response, app: AppDep, actor: Scheduler
) -> EventView:
    outcome = app.reschedule_event(
        event_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)


@router.post(
    "/{event_id}/cancel",
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Cancel a scheduled event (中止); it never counts as held",
    response_description="The cancellation is recorded: the event, cancelled",
)
def cancel_event(
    event_id: UUID, body: ReasonIn, response: Response, app: AppDep, actor: Scheduler
) -> EventView:
    outcome = app.cancel_event(
        event_id, reason=body.reason, recorded_by=actor.provenance, idempotency=actor.idempotency
    )
    return answer(response, outcome)


@router.post(
    "/{event_id}/close",
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Close an event's attendance: no more check-ins or walk-ins",
    response_description="The closing is recorded: the event, closed",
)
def close_event(event_id: UUID, response: Response, app: AppDep, actor: Scheduler) -> EventView:
    outcome = app.close_event(event_id, recorded_by=actor.provenance, idempotency=actor.idempotency)
    return answer(response, outcome)


@attendance.post(
    "/check-ins",
    status_code=201,
    responses={
        200: {"description": "Already checked in: nothing changed", "model": CheckInView},
        **problem_responses(400, 401, 403, 404, 409, 413, 422),
    },
    summary="Check a participant in (受付): 201 the first time, 200 when already checked in",
)
async def check_in(
    event_id: UUID, body: CheckInIn, response: Response, write: CheckInDep, actor: Desk
) -> CheckInView:
    outcome = await write(
        event_id,
        participant_id=body.participant_id,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome, location=f"/events/{event_id}/check-ins/{body.participant_id}")


@attendance.get("/check-ins", responses=problem_responses(401, 403, 404, 422))
def list_check_ins(event_id: UUID, app: AppDep, services: ServicesDep, _: Reader) -> CheckInListOut:
    app.get_event(event_id)
    entries = services.roster.check_ins_at(event_id)
    return CheckInListOut(
        event_id=event_id,
        checked_in=sum(entry.counted for entry in entries),
        check_ins=[
            RosterEntryOut(
                participant_id=entry.participant_id,
                status=(
                    AttendanceStatus.CHECKED_IN if entry.counted else AttendanceStatus.REVERTED
                ).value,
                recorded_at=entry.recorded_at,
                revert_reason=entry.revert_reason,
            )
            for entry in entries
        ],
    )


@attendance.get("/check-ins/{participant_id}", responses=problem_responses(401, 403, 404, 422))
async def get_check_in(event_id: UUID, participant_id: UUID, app: AppDep, _: Reader) -> CheckInView:
    return await read_in_thread(app.get_check_in, event_id, participant_id)


@attendance.post(
    "/check-ins/{participant_id}/revert",
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Correct a wrong check-in with a reason; it stops counting and stays on record",
)
def revert_check_in(
    event_id: UUID,
    participant_id: UUID,
    body: ReasonIn,
    response: Response,
    app: AppDep,
    actor: Desk,
) -> CheckInView:
    outcome = app.revert_check_in(
        event_id,
        participant_id,
        reason=body.reason,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)


@attendance.post(
    "/walk-ins",
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Record walk-in headcounts by generation band, without personal data",
)
def record_walk_ins(
    event_id: UUID, body: WalkInsIn, response: Response, app: AppDep, actor: Desk
) -> WalkInView:
    outcome = app.record_walk_ins(
        event_id, counts=body.counts, recorded_by=actor.provenance, idempotency=actor.idempotency
    )
    return answer(response, outcome, location=f"/events/{event_id}/walk-ins/{outcome.result.id}")


@attendance.get("/walk-ins", responses=problem_responses(401, 403, 404, 422))
def list_walk_ins(event_id: UUID, app: AppDep, services: ServicesDep, _: Reader) -> WalkInListOut:
    app.get_event(event_id)
    tallies = services.roster.walk_ins_at(event_id)
    by_band = walk_ins_by_band(tallies)
    return WalkInListOut(
        event_id=event_id,
        total=sum(by_band.values()),
        by_band=by_band,
        tallies=[
            WalkInEntryOut(
                id=tally.id,
                counts=tally.counts,
                counted=tally.counted,
                recorded_at=tally.recorded_at,
                revert_reason=tally.revert_reason,
            )
            for tally in tallies
        ],
    )


@attendance.get("/walk-ins/{tally_id}", responses=problem_responses(401, 403, 404, 422))
async def get_walk_ins(event_id: UUID, tally_id: UUID, app: AppDep, _: Reader) -> WalkInView:
    return await read_in_thread(app.get_walk_ins, event_id, tally_id)


@attendance.post(
    "/walk-ins/{tally_id}/revert",
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Correct a wrong walk-in tally with a reason",
)
def revert_walk_ins(
    event_id: UUID,
    tally_id: UUID,
    body: ReasonIn,
    response: Response,
    app: AppDep,
    actor: Desk,
) -> WalkInView:
    outcome = app.revert_walk_ins(
        event_id,
        tally_id,
        reason=body.reason,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)
