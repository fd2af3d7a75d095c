from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from application.views import ProgramView
from infrastructure.tokens import Principal
from interfaces.http.access import READ_RECORDS, SCHEDULING
from interfaces.http.deps import Actor, Allow, AllowCommand, ApiRoute, AppDep, read_in_thread
from interfaces.http.problems import problem_responses
from interfaces.http.routes.common import answer
from interfaces.http.schemas import ProgramIn

router = APIRouter(prefix="/programs", tags=["programs"], route_class=ApiRoute)


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Launch a programme (事業・取組) with its host organisations",
)
def launch_program(
    body: ProgramIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(SCHEDULING))],
) -> ProgramView:
    outcome = app.launch_program(
        name=body.name,
        policy=body.policy,
        area=body.area,
        host_organization_ids=body.host_organization_ids,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome, location=f"/programs/{outcome.result.id}")


@router.get("/{program_id}", responses=problem_responses(401, 403, 404, 422))
async def get_program(
    program_id: UUID,
    app: AppDep,
    _: Annotated[Principal, Depends(Allow(READ_RECORDS))],
) -> ProgramView:
    return await read_in_thread(app.get_program, program_id)
