from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from domain.programs import Policy
from infrastructure.tokens import Principal
from interfaces.http.access import READ_INDICATORS
from interfaces.http.deps import Allow, ApiRoute, ServicesDep
from interfaces.http.problems import problem_responses
from projections.indicators.export import csv_filename, indicators_csv
from projections.indicators.model import Scope

router = APIRouter(prefix="/indicators", tags=["indicators"], route_class=ApiRoute)
Evaluator = Annotated[Principal, Depends(Allow(READ_INDICATORS))]


SCOPE_EXAMPLE = {"district": "suge", "program_id": None, "policy": "2-2"}


class IndicatorsOut(BaseModel):
    fiscal_year: int = Field(examples=[2026])
    label: str = Field(examples=["2026(令和8)年度"])
    as_of: date | None = Field(
        description="The day (JST) the answer stands at; null: now", examples=["2026-09-30"]
    )
    definitions: str = Field(examples=["indicators-v1 (bands-2026.1; small ≤ 30; ties ≥ 2)"])
    scope: dict[str, str | None] = Field(examples=[SCOPE_EXAMPLE])
    position: int | None = Field(
        description="Log position the read model had processed", examples=[52340]
    )
    indicators: dict[str, dict[str, Any]] = Field(
        description="Per indicator id: value, name_ja, name_en and breakdowns",
        examples=[
            {
                "loose_ties": {
                    "value": 128,
                    "name_ja": "ゆるやかなつながり",
                    "name_en": "Loose ties",
                    "threshold": 2,
                }
            }
        ],
    )


FiscalYear = Annotated[int, Query(ge=1990, le=2100, description="2026 means 2026(令和8)年度")]
District = Annotated[str | None, Query(max_length=50, description="The event's district")]
ProgramId = Annotated[UUID | None, Query()]
PolicyFilter = Annotated[Policy | None, Query(description="2-1 or 2-2")]
AsOf = Annotated[
    date | None, Query(description="Answer as if the log ended at the end of this day (JST)")
]


def scope_from_query(
    services: ServicesDep,
    district: District = None,
    program_id: ProgramId = None,
    policy: PolicyFilter = None,
) -> Scope:
    """The filters every indicator route takes; an unknown district is refused (422)."""
    if district is not None:
        services.app.districts.get(district)
    return Scope(district, program_id, policy.value if policy is not None else None)


ScopeDep = Annotated[Scope, Depends(scope_from_query)]


@router.get(
    "", responses=problem_responses(401, 403, 422), summary="Outcome indicators for a fiscal year"
)
def get_indicators(
    services: ServicesDep,
    _: Evaluator,
    fiscal_year: FiscalYear,
    scope: ScopeDep,
    as_of: AsOf = None,
) -> IndicatorsOut:
    return IndicatorsOut.model_validate(services.indicators.indicators(fiscal_year, scope, as_of))


class ProgressOut(BaseModel):
    plan: str = Field(
        examples=["川崎市地域福祉計画・多摩区計画 基本目標2 多世代交流でつながる地域づくり"]
    )
    target_fiscal_year: int = Field(examples=[2026])
    definitions: str = Field(examples=["indicators-v1 (bands-2026.1; small ≤ 30; ties ≥ 2)"])
    scope: dict[str, str | None] = Field(examples=[SCOPE_EXAMPLE])
    indicators: dict[str, dict[str, Any]] = Field(
        description="Per indicator id: baseline (初期値), results (実績) per fiscal year with "
        "grade a (target reached) / b (improved on baseline) / c (not improved), target (目標値)",
        examples=[
            {
                "loose_ties": {
                    "name_ja": "ゆるやかなつながり",
                    "name_en": "Loose ties",
                    "baseline": {"fiscal_year": 2024, "value": 110},
                    "target": {"fiscal_year": 2026, "value": 132},  # +20 % (targets.json)
                    "results": [
                        {
                            "fiscal_year": 2024,
                            "label": "2024(令和6)年度",
                            "value": 110,
                            "grade": "c",
                        },
                        {
                            "fiscal_year": 2025,
                            "label": "2025(令和7)年度",
                            "value": 118,
                            "grade": "b",
                        },
                    ],
                }
            }
        ],
    )


@router.get(
    "/progress",
    responses=problem_responses(401, 403, 422),
    summary="Baseline, yearly results with grades, and targets, per indicator",
)
def get_progress(
    services: ServicesDep,
    _: Evaluator,
    scope: ScopeDep,
) -> ProgressOut:
    return ProgressOut.model_validate(services.indicators.progress(services.targets, scope))


# CSV for spreadsheets: its own router, since the path is not under the "/indicators" prefix.
csv_router = APIRouter(tags=["indicators"], route_class=ApiRoute)
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


@csv_router.get(
    "/indicators.csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "UTF-8 with BOM, one row per value: headline values and breakdowns",
        },
        **problem_responses(401, 403, 422),
    },
    summary="Outcome indicators for a fiscal year as CSV (Excel-ready)",
)
def get_indicators_csv(
    services: ServicesDep,
    _: Evaluator,
    fiscal_year: FiscalYear,
    scope: ScopeDep,
    as_of: AsOf = None,
) -> Response:
    answer = services.indicators.indicators(fiscal_year, scope, as_of)
    return Response(
        indicators_csv(answer),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(answer)}"'},
    )
