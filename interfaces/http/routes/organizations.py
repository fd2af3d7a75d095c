from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from application.views import OrganizationView
from infrastructure.tokens import Principal
from interfaces.http.access import READ_RECORDS, SCHEDULING
from interfaces.http.deps import Actor, Allow, AllowCommand, ApiRoute, AppDep, read_in_thread
from interfaces.http.problems import problem_responses
from interfaces.http.routes.common import answer
from interfaces.http.schemas import OrganizationIn

router = APIRouter(prefix="/organizations", tags=["organizations"], route_class=ApiRoute)


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Register an organisation (団体)",
)
def register_organization(
    body: OrganizationIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(SCHEDULING))],
) -> OrganizationView:
    outcome = app.register_organization(
        name=body.name,
        kind=body.kind,
        district_id=body.district_id,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome, location=f"/organizations/{outcome.result.id}")


@router.get("/{organization_id}", responses=problem_responses(401, 403, 404, 422))
async def get_organization(
    organization_id: UUID,
    app: AppDep,
    _: Annotated[Principal, Depends(Allow(READ_RECORDS))],
) -> OrganizationView:
    return await read_in_thread(app.get_organization, organization_id)
