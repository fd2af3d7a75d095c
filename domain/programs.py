"""Programmes (事業・取組) of the plan, each under a basic policy and an area."""

from __future__ import annotations

from enum import Enum
from uuid import UUID

from eventsourcing.domain import event

from domain.errors import InvalidValue
from domain.organizations import clean_name
from domain.provenance import Provenance
from domain.recording import RecordedAggregate


class Policy(Enum):
    """Basic policies of Basic Goal 2."""

    OPEN_ACTIVITIES = "2-1"  # 誰もが気軽に参加できる活動・交流の機会づくり
    MUTUAL_SUPPORT = "2-2"  # 身近な地域での支え合い活動の推進 (重点項目)


class ProgramArea(Enum):
    CHILDREN = "children"  # 子ども・子育て
    ELDERLY_DISABLED = "elderly_disabled"  # 高齢者・障がい者
    COMMUNITY = "community"  # 地域・防災・暮らし


POLICY_NAMES: dict[Policy, str] = {
    Policy.OPEN_ACTIVITIES: "誰もが気軽に参加できる活動・交流の機会づくり",
    Policy.MUTUAL_SUPPORT: "身近な地域での支え合い活動の推進",
}

AREA_NAMES: dict[ProgramArea, str] = {
    ProgramArea.CHILDREN: "子ども・子育て",
    ProgramArea.ELDERLY_DISABLED: "高齢者・障がい者",
    ProgramArea.COMMUNITY: "地域・防災・暮らし",
}

MAX_HOSTS = 50


class Program(RecordedAggregate):
    """A programme hosted by one or more organisations."""

    class Launched(RecordedAggregate.Created):
        name: str
        policy: Policy
        area: ProgramArea
        host_organization_ids: list[UUID]
        recorded_by: Provenance

    @classmethod
    def launch(
        cls,
        *,
        name: str,
        policy: Policy,
        area: ProgramArea,
        host_organization_ids: list[UUID],
        recorded_by: Provenance,
    ) -> Program:
        hosts = list(dict.fromkeys(host_organization_ids))
        if not hosts:
            raise InvalidValue("a programme needs at least one host organisation")
        if len(hosts) > MAX_HOSTS:
            raise InvalidValue(f"a programme has at most {MAX_HOSTS} host organisations")
        return cls(
            name=clean_name(name, "programme name"),
            policy=policy,
            area=area,
            host_organization_ids=hosts,
            recorded_by=recorded_by,
        )

    @event(Launched)
    def __init__(
        self,
        *,
        name: str,
        policy: Policy,
        area: ProgramArea,
        host_organization_ids: list[UUID],
        recorded_by: Provenance,
    ) -> None:
        self.name = name
        self.policy = policy
        self.area = area
        self.host_organization_ids = list(host_organization_ids)
