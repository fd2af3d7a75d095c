from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Response

from application.personal_data import DisclosureView
from application.views import ParticipantView
from infrastructure.tokens import Principal
from interfaces.http.access import ADMIN_ONLY, FRONT_DESK
from interfaces.http.deps import Actor, Allow, AllowCommand, ApiRoute, AppDep, read_in_thread
from interfaces.http.problems import problem_responses
from interfaces.http.routes.common import answer
from interfaces.http.schemas import (
    ConsentIn,
    CorrectionIn,
    ParticipantIn,
    ReasonIn,
    SensitiveDataIn,
)

router = APIRouter(prefix="/participants", tags=["participants"], route_class=ApiRoute)


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 422),
    summary="Register a participant (参加者) by birth year, birth date or generation band",
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
        birth_date=body.birth_date,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome, location=f"/participants/{outcome.result.id}")


@router.get("/{participant_id}", responses=problem_responses(401, 403, 404, 422))
async def get_participant(
    participant_id: UUID,
    app: AppDep,
    _: Annotated[Principal, Depends(Allow(FRONT_DESK))],
) -> ParticipantView:
    return await read_in_thread(app.get_participant, participant_id)


@router.post(
    "/{participant_id}/corrections",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Correct personal data (訂正): a new event; the fields present are corrected",
)
def correct_personal_data(
    participant_id: UUID,
    body: CorrectionIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(FRONT_DESK))],
) -> ParticipantView:
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    outcome = app.correct_personal_data(
        participant_id,
        changes=changes,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)


@router.post(
    "/{participant_id}/consents",
    status_code=201,
    responses={
        200: {"description": "Already so: nothing changed", "model": ParticipantView},
        **problem_responses(400, 401, 403, 404, 409, 413, 422),
    },
    summary="Give or withdraw consent for a purpose (201 when something new was recorded)",
)
def record_consent(
    participant_id: UUID,
    body: ConsentIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(FRONT_DESK))],
) -> ParticipantView:
    outcome = app.record_consent(
        participant_id,
        purpose=body.purpose,
        given=body.given,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)


@router.post(
    "/{participant_id}/sensitive-data",
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Record 要配慮個人情報 under a current consent (409 without one)",
)
def record_sensitive_data(
    participant_id: UUID,
    body: SensitiveDataIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(FRONT_DESK))],
) -> ParticipantView:
    outcome = app.record_sensitive_data(
        participant_id,
        purpose=body.purpose,
        category=body.category,
        detail=body.detail,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)


@router.post(
    "/{participant_id}/erasure",
    responses=problem_responses(400, 401, 403, 404, 413, 422),
    summary="Erase personal data: destroy the participant's key, record the erasure",
)
def erase_participant(
    participant_id: UUID,
    body: ReasonIn,
    response: Response,
    app: AppDep,
    actor: Annotated[Actor, Depends(AllowCommand(ADMIN_ONLY))],
) -> ParticipantView:
    outcome = app.erase_participant(
        participant_id,
        reason=body.reason,
        recorded_by=actor.provenance,
        idempotency=actor.idempotency,
    )
    return answer(response, outcome)


@router.get(
    "/{participant_id}/disclosure",
    responses=problem_responses(401, 403, 404, 422),
    summary="開示: everything held on one participant, attendance history included",
)
def disclose_participant(
    participant_id: UUID,
    app: AppDep,
    _: Annotated[Principal, Depends(Allow(ADMIN_ONLY))],
) -> DisclosureView:
    return app.disclose_participant(participant_id)
