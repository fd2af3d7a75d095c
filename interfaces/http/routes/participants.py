from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from application.views import ParticipantView
from infrastructure.tokens import Principal
from interfaces.http.access import FRONT_DESK
from interfaces.http.deps import Actor, Allow, AllowCommand, AppDep
from interfaces.http.problems import problem_responses
from interfaces.http.routes.common import answer
from interfaces.http.schemas import ParticipantIn

router = APIRouter(prefix="/participants", tags=["participants"])


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Register a participant (参加者) by birth year or generation band",
)
def register_participant(
    body: ParticipantIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(FRONT_DESK))],
) -> ParticipantView:
    outcome = app.register_participant(
        birth_year=body.birth_year,
        band_id=body.band_id,
        district_id=body.district_id,
        name=body.name,
        contact=body.contact,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome, location=f"/participants/{outcome.result.id}")


@router.get("/{participant_id}", responses=problem_responses(401, 403, 404, 422))
def get_participant(
    participant_id: UUID,
    app: AppDep,
    _: Annotated[Principal, Depends(Allow(FRONT_DESK))],
) -> ParticipantView:
    return app.get_participant(participant_id)
