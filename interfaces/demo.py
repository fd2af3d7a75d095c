"""Deterministic demo data for ``tsunagari demo load``, written through the application.

The organisations, programmes and schedule follow the plan's own text (Basic Goal 2 of Tama
Ward's community-welfare plan). Residents are synthetic: a birth year (or, for a few, only a
generation band) and a district, no names. Who attends what is simulated with programme-specific
age affinity, a preference for the resident's own district, and regulars who come again and
again, so that loose ties can form.

Everything is decided by ``random.Random(plan.seed)`` and the ``today`` given: the same plan and
the same day give the same names, dates, counts and attendance (aggregate ids are uuid4 and
differ between runs). The whole dataset is simulated in memory first, with residents known by
their index; then it is recorded through the commands of :class:`Tsunagari`, about
:data:`CHUNK_SIZE` commands per transaction.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from types import TracebackType
from uuid import UUID

from application.app import Tsunagari
from domain.events import JST
from domain.fiscal import fiscal_year_of
from domain.organizations import OrganizationKind
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role

ACTOR_ID = "demo-loader"
CHUNK_SIZE = 500
"""Commands per transaction: one commit per chunk instead of one per command."""
UPCOMING_DAYS = 28
"""Events in the next four weeks are scheduled and stay open (no attendance yet)."""
CANCEL_RATE = 0.03
REVERT_RATE = 0.01
BAND_ONLY_RATE = 0.05
"""Share of residents registered with a generation band only, no birth year."""
REFERENCE_RESIDENTS = 2000
"""Event sizes below are written for this many residents and scaled for other plans."""
TIMELINE_UNITS_PER_RESIDENT_YEAR = 10
"""Progress units for the events of one fiscal year, per resident: a check-in takes a few
times longer than registering a resident (one unit), so the bar moves at a steady pace."""

DISTRICT_IDS = ("noborito", "inada", "suge", "nakanoshima", "ikuta")
SHORT_NAMES = {
    "noborito": "登戸",
    "inada": "稲田",
    "suge": "菅",
    "nakanoshima": "中野島",
    "ikuta": "生田",
}
DISTRICT_WEIGHTS = {"noborito": 20, "inada": 22, "suge": 15, "nakanoshima": 13, "ikuta": 30}
"""Approximate share of the ward's residents in each district (percent)."""

AGE_BRACKETS: tuple[tuple[int, int, float], ...] = (
    # Tama Ward, about 227,000 residents: about 11% under 15, 20% aged 65 and over, and
    # many students and young workers (three universities, commuter stations).
    (0, 4, 3.5),
    (5, 9, 3.7),
    (10, 14, 3.8),
    (15, 19, 4.2),
    (20, 24, 7.9),
    (25, 29, 7.8),
    (30, 34, 6.6),
    (35, 39, 6.5),
    (40, 44, 6.9),
    (45, 49, 8.2),
    (50, 54, 8.3),
    (55, 59, 6.8),
    (60, 64, 5.8),
    (65, 69, 5.0),
    (70, 74, 5.7),
    (75, 79, 4.4),
    (80, 84, 2.9),
    (85, 89, 1.4),
    (90, 99, 0.6),
)
"""Age brackets (inclusive) and their share of residents, in percent; they sum to 100."""

_FY_MONTHS = (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


# The plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPlan:
    """How much demo data to make, and the seed that decides all of it."""

    residents: int = 2000
    fiscal_years: int = 3
    seed: int = 2026

    def __post_init__(self) -> None:
        if not 1 <= self.residents <= 1_000_000:
            raise ValueError("residents must be between 1 and 1,000,000")
        if not 1 <= self.fiscal_years <= 20:
            raise ValueError("fiscal_years must be between 1 and 20")


@dataclass(frozen=True)
class DemoSummary:
    """What was recorded."""

    organizations: int
    programs: int
    events: int
    cancelled_events: int
    participants: int
    check_ins: int
    reverted_check_ins: int
    walk_in_tallies: int
    stored_events: int


# Reference content: organisations and programmes of the plan ------------------------


@dataclass(frozen=True)
class OrgSpec:
    key: str
    name: str
    kind: OrganizationKind
    district: str | None


def _organizations() -> tuple[OrgSpec, ...]:
    kind = OrganizationKind
    specs = [
        OrgSpec("ward", "多摩区役所", kind.WARD_OFFICE, None),
        OrgSpec("mimamori", "多摩区役所 地域みまもり支援センター", kind.WARD_OFFICE, None),
        OrgSpec("shakyo", "多摩区社会福祉協議会", kind.SOCIAL_WELFARE_COUNCIL, None),
        OrgSpec("minsei", "多摩区民生委員児童委員協議会", kind.WELFARE_COMMISSIONERS, None),
    ]
    for district in DISTRICT_IDS:
        short = SHORT_NAMES[district]
        specs.append(
            OrgSpec(
                f"minsei_{district}",
                f"{short}地区民生委員児童委員協議会",
                kind.WELFARE_COMMISSIONERS,
                district,
            )
        )
        specs.append(
            OrgSpec(
                f"chokai_{district}",
                f"{short}地区町会連合会",
                kind.NEIGHBOURHOOD_ASSOCIATION,
                district,
            )
        )
    neighbourhood = (
        ("noborito", "登戸新町自治会"),
        ("inada", "宿河原町会"),
        ("suge", "菅北浦自治会"),
        ("nakanoshima", "中野島町会"),
        ("ikuta", "西生田自治会"),
    )
    for district, name in neighbourhood:
        specs.append(
            OrgSpec(f"jichikai_{district}", name, kind.NEIGHBOURHOOD_ASSOCIATION, district)
        )
    specs += [
        OrgSpec("cafe_noborito", "地域カフェ ひだまり", kind.COMMUNITY_CAFE, "noborito"),
        OrgSpec("cafe_suge", "多世代カフェ すげのわ", kind.COMMUNITY_CAFE, "suge"),
        OrgSpec(
            "cafe_nakanoshima", "つながりカフェ なかのしま", kind.COMMUNITY_CAFE, "nakanoshima"
        ),
        OrgSpec("cafe_ikuta", "コミュニティカフェ いくたの森", kind.COMMUNITY_CAFE, "ikuta"),
        OrgSpec(
            "disability_inada", "地域活動支援センター たまがわ", kind.DISABILITY_SERVICE, "inada"
        ),
        OrgSpec(
            "disability_ikuta",
            "就労継続支援B型事業所 いくた工房",
            kind.DISABILITY_SERVICE,
            "ikuta",
        ),
        OrgSpec("clinic_noborito", "のぼりと駅前内科クリニック", kind.CLINIC, "noborito"),
        OrgSpec("clinic_nakanoshima", "中野島こどもクリニック", kind.CLINIC, "nakanoshima"),
        OrgSpec("clinic_suge", "すげ在宅診療所", kind.CLINIC, "suge"),
        OrgSpec("anker", "Anker フロントウン生田 運営事業者", kind.BUSINESS, "ikuta"),
        OrgSpec("shotenkai", "たまがわ商店会", kind.BUSINESS, "inada"),
        OrgSpec("senshu", "専修大学", kind.UNIVERSITY, "ikuta"),
        OrgSpec("meiji", "明治大学", kind.UNIVERSITY, "ikuta"),
        OrgSpec("jwu", "日本女子大学", kind.UNIVERSITY, "ikuta"),
        OrgSpec("npo_kosodate", "NPO法人 たま子育てネットワーク", kind.NPO, None),
        OrgSpec("npo_tabunka", "NPO法人 多文化共生ネット多摩", kind.NPO, "noborito"),
        OrgSpec("sports_center", "川崎市多摩スポーツセンター", kind.OTHER, "suge"),
    ]
    return tuple(specs)


class Pool(Enum):
    """Which residents a segment of attendees is drawn from (never recorded: simulation only)."""

    ANY = "any"
    DISABLED = "disabled"  # learners of 障がい者社会参加学習活動
    VOLUNTEER = "volunteer"  # 民生委員, student and senior volunteers
    LEADER = "leader"  # active members of 町内会, cafés, groups: the meetings' regulars


@dataclass(frozen=True)
class Segment:
    """One kind of attendee at a series: an age range at the event and how many come."""

    min_age: int
    max_age: int
    low: int
    high: int
    pool: Pool = Pool.ANY
    parent: float = 0.0
    """Chance that a chosen child comes with the parent the simulation gave them."""
    regulars: float = 0.5
    """Size of the series' group of regulars, as a share of ``high``."""
    loyalty: float = 0.7
    """Chance that a regular comes to any one event."""


@dataclass(frozen=True)
class Series:
    """Recurring events of a programme: a title, a place and a rhythm."""

    title: str
    district: str
    venue: str
    months: tuple[int, ...]
    week: int | tuple[int, ...]
    """Which week(s) of the month: 2 is the second ``weekday`` of the month."""
    weekday: int
    start: time
    minutes: int
    segments: tuple[Segment, ...]
    local: bool = True
    """Residents of the event's district are much likelier to come than others."""
    big: bool = False
    """Sizes scale with the number of residents (a ward-wide festival)."""
    walk_ins: tuple[int, int] | None = None
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProgramSpec:
    key: str
    name: str
    policy: Policy
    area: ProgramArea
    hosts: tuple[str, ...]
    series: tuple[Series, ...]


def _months(*skip: int) -> tuple[int, ...]:
    return tuple(month for month in _FY_MONTHS if month not in skip)


def _programs() -> tuple[ProgramSpec, ...]:
    open_ = Policy.OPEN_ACTIVITIES
    support = Policy.MUTUAL_SUPPORT
    children = ProgramArea.CHILDREN
    elderly = ProgramArea.ELDERLY_DISABLED
    community = ProgramArea.COMMUNITY
    ten, two = time(10, 0), time(14, 0)
    salon_venues = {
        "noborito": ("登戸こども文化センター", "多摩区役所 保健福祉センター"),
        "inada": ("稲田こども文化センター", "宿河原こども文化センター"),
        "suge": ("菅こども文化センター", "菅北浦町会会館"),
        "nakanoshima": ("中野島こども文化センター", "中野島町会会館"),
        "ikuta": ("生田こども文化センター", "南生田こども文化センター"),
    }
    salon_people = (
        Segment(0, 3, 6, 12, parent=0.85, regulars=0.6, loyalty=0.7),
        Segment(60, 82, 2, 4, Pool.VOLUNTEER, regulars=1.0, loyalty=0.85),
        Segment(28, 45, 0, 2, regulars=0.0),
    )
    salons: list[Series] = []
    for index, district in enumerate(DISTRICT_IDS):
        short = SHORT_NAMES[district]
        first, second = salon_venues[district]
        salons.append(
            Series(
                f"{short}子育てサロン", district, first, _months(8), 1 + index % 2,
                TUE, ten, 90, salon_people,
            )
        )  # fmt: skip
        salons.append(
            Series(
                f"{short}子育てひろば", district, second, _months(8), 3 + index % 2,
                THU, ten, 120, salon_people,
            )
        )  # fmt: skip
    foreign_people = (
        Segment(0, 6, 3, 8, parent=0.9, regulars=0.6),
        Segment(19, 29, 0, 2, Pool.VOLUNTEER, regulars=1.0),
        Segment(55, 75, 1, 2, Pool.VOLUNTEER, regulars=1.0, loyalty=0.8),
    )
    measuring = tuple(
        Series(
            f"身体測定・遊びの広場（{SHORT_NAMES[district]}）", district,
            f"{SHORT_NAMES[district]}こども文化センター",
            tuple(_FY_MONTHS[i] for i in range(index, 12, 5)), 2, WED, ten, 120,
            (
                Segment(0, 2, 4, 10, parent=0.95, regulars=0.2),
                Segment(60, 80, 0, 2, Pool.VOLUNTEER, regulars=1.0),
            ),
        )
        for index, district in enumerate(DISTRICT_IDS)
    )  # fmt: skip
    parks = tuple(
        Series(
            f"{SHORT_NAMES[district]} 公園づくりワークショップ", district,
            f"{SHORT_NAMES[district]}地区の街区公園", (month,), 2, SAT, ten, 120,
            (
                Segment(30, 75, 6, 14, regulars=0.2),
                Segment(6, 12, 2, 6, parent=0.6, regulars=0.0),
                Segment(19, 29, 0, 3, regulars=0.0),
            ),
        )
        for district, month in zip(DISTRICT_IDS, (6, 7, 9, 10, 11), strict=True)
    )  # fmt: skip
    care_meetings = tuple(
        Series(
            f"{SHORT_NAMES[district]}地区 地域ケア会議・ささえあい懇談会", district,
            f"{SHORT_NAMES[district]}地区 地域集会所", (5, 8, 11, 2), 2, THU, two, 120,
            (
                Segment(40, 85, 8, 14, Pool.LEADER, regulars=0.8, loyalty=0.75),
                Segment(55, 80, 2, 5, Pool.VOLUNTEER, regulars=0.7),
                Segment(30, 64, 1, 4, regulars=0.2),
            ),
        )
        for district in DISTRICT_IDS
    )  # fmt: skip
    karte = tuple(
        Series(
            f"{SHORT_NAMES[district]}地区カルテ意見交換会", district,
            f"{SHORT_NAMES[district]}地区 地域集会所", (1 + index % 2,), 3, SAT, two, 120,
            (
                Segment(40, 85, 8, 16, Pool.LEADER, regulars=0.8),
                Segment(19, 24, 0, 3, Pool.VOLUNTEER, regulars=0.0),
                Segment(25, 64, 2, 5, regulars=0.0),
            ),
        )
        for index, district in enumerate(DISTRICT_IDS)
    )  # fmt: skip
    return (
        ProgramSpec(
            "salon", "子育てサロン・子育てひろば", open_, children,
            ("shakyo", "minsei", *(f"minsei_{d}" for d in DISTRICT_IDS), "npo_kosodate"),
            tuple(salons),
        ),
        ProgramSpec(
            "foreign", "外国人の子育てひろば", open_, children,
            ("npo_tabunka", "ward", "npo_kosodate"),
            (
                Series(
                    "外国人の子育てひろば", "noborito", "多摩区役所 会議室", _FY_MONTHS, 2,
                    SAT, ten, 120, foreign_people, local=False,
                ),
                Series(
                    "外国人の子育てひろば（生田）", "ikuta", "生田こども文化センター",
                    (6, 9, 12, 3), 4, SAT, ten, 120, foreign_people,
                ),
            ),
        ),
        ProgramSpec(
            "matsuri", "たまたま子育てまつり", open_, children,
            ("ward", "shakyo", "npo_kosodate", "minsei"),
            (
                Series(
                    "たまたま子育てまつり", "noborito", "多摩市民館・多摩区役所", (11,), 2,
                    SAT, ten, 300,
                    (
                        Segment(0, 5, 60, 110, parent=0.8, regulars=0.0),
                        Segment(6, 12, 30, 60, parent=0.5, regulars=0.0),
                        Segment(13, 18, 5, 15, regulars=0.0),
                        Segment(19, 24, 8, 20, regulars=0.0),
                        Segment(60, 80, 10, 25, Pool.VOLUNTEER, regulars=0.0),
                    ),
                    local=False, big=True, walk_ins=(150, 300),
                ),
            ),
        ),
        ProgramSpec(
            "measuring", "身体測定・遊びの広場", open_, children, ("mimamori", "minsei"),
            measuring,
        ),
        ProgramSpec(
            "promotion", "子ども子育て推進事業", open_, children, ("ward", "npo_kosodate"),
            (
                Series(
                    "子ども子育て推進事業 子育て講座", "noborito", "多摩区役所 保健福祉センター",
                    (6, 9, 12, 2), 3, SAT, ten, 120,
                    (
                        Segment(0, 5, 5, 12, parent=0.9, regulars=0.1),
                        Segment(28, 45, 3, 8, regulars=0.1),
                    ),
                    local=False,
                    topics=("パパと遊ぼう", "離乳食講座", "親子リトミック", "子育て応援講座"),
                ),
            ),
        ),
        ProgramSpec(
            "passport", "多摩区子育て支援パスポート事業", open_, children, ("ward", "shotenkai"),
            (
                Series(
                    "子育て支援パスポート 協賛店交流会", "inada", "たまがわ商店会 集会室",
                    (7,), 2, WED, two, 90, (Segment(30, 70, 6, 12, Pool.LEADER),),
                    local=False,
                ),
            ),
        ),
        ProgramSpec(
            "disability", "障がい者社会参加学習活動", open_, elderly,
            ("ward", "disability_inada", "disability_ikuta", "shakyo"),
            (
                Series(
                    "障がい者社会参加学習活動", "inada", "多摩市民館", _months(8, 1), 2, SAT,
                    ten, 180,
                    (
                        Segment(18, 64, 8, 14, Pool.DISABLED, regulars=0.9, loyalty=0.8),
                        Segment(19, 24, 2, 5, Pool.VOLUNTEER, regulars=0.6),
                        Segment(55, 79, 2, 4, Pool.VOLUNTEER, regulars=0.8),
                        Segment(30, 54, 1, 3, regulars=0.3),
                    ),
                    local=False,
                    topics=(
                        "料理教室", "ボッチャ体験", "生田緑地散策", "陶芸教室", "音楽交流会",
                        "防災体験", "クリスマス交流会", "書き初め", "卒業記念交流会",
                        "地域のお店めぐり",
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "anker", "「Anker フロントウン生田」との連携イベント・教室", open_, community,
            ("anker", "ward", "sports_center"),
            (
                Series(
                    "親子サッカー教室（Anker フロントウン生田）", "ikuta",
                    "Anker フロントウン生田", _FY_MONTHS, 1, SAT, ten, 90,
                    (
                        Segment(5, 12, 10, 22, parent=0.7, regulars=0.4),
                        Segment(13, 18, 0, 3, regulars=0.0),
                    ),
                ),
                Series(
                    "健康ウォーキング・体操教室（Anker フロントウン生田）", "ikuta",
                    "Anker フロントウン生田", _FY_MONTHS, (1, 3), WED, ten, 90,
                    (
                        Segment(60, 85, 10, 20, regulars=0.6),
                        Segment(40, 59, 2, 5, regulars=0.2),
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "festa", "多摩区スポーツフェスタ", open_, community,
            ("ward", "sports_center", *(f"chokai_{d}" for d in DISTRICT_IDS)),
            (
                Series(
                    "多摩区スポーツフェスタ", "suge", "川崎市多摩スポーツセンター", (10,), 2,
                    SUN, time(9, 0), 360,
                    (
                        Segment(3, 12, 50, 90, parent=0.5, regulars=0.0),
                        Segment(13, 18, 25, 50, regulars=0.0),
                        Segment(19, 29, 25, 50, regulars=0.0),
                        Segment(30, 64, 70, 120, regulars=0.0),
                        Segment(65, 84, 40, 80, regulars=0.0),
                    ),
                    local=False, big=True, walk_ins=(200, 400),
                ),
            ),
        ),
        ProgramSpec(
            "sports_center", "川崎市多摩スポーツセンターの運営", open_, community,
            ("sports_center",),
            (
                Series(
                    "多世代ふれあいスポーツ教室（卓球・ボッチャ）", "suge",
                    "川崎市多摩スポーツセンター", _FY_MONTHS, (2, 4), SAT, time(13, 0), 120,
                    (
                        Segment(6, 12, 2, 6, parent=0.4, regulars=0.3),
                        Segment(19, 64, 3, 8, regulars=0.3),
                        Segment(65, 85, 4, 10, regulars=0.6),
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "parks", "魅力的な公園整備事業", open_, community,
            ("ward", *(f"chokai_{d}" for d in DISTRICT_IDS)),
            parks,
        ),
        ProgramSpec(
            "care", "地域包括ケアシステムの推進", support, community,
            ("mimamori", "shakyo", "clinic_noborito", "clinic_suge", "minsei"),
            care_meetings,
        ),
        ProgramSpec(
            "karte", "地区カルテ等を活用した地域ごとの情報の集約と見える化", support,
            community, ("ward", "shakyo"), karte,
        ),
        ProgramSpec(
            "universities", "多摩区・3大学連携事業", support, community,
            ("senshu", "meiji", "jwu", "ward"),
            (
                Series(
                    "多摩区・3大学連携事業", "ikuta", "大学キャンパス", (5, 7, 10, 12, 2, 3), 3,
                    SAT, time(13, 0), 150,
                    (
                        Segment(18, 24, 10, 25, regulars=0.3),
                        Segment(60, 85, 8, 20, regulars=0.4),
                        Segment(6, 12, 3, 10, parent=0.6, regulars=0.1),
                        Segment(30, 59, 3, 8, regulars=0.1),
                    ),
                    local=False, walk_ins=(20, 60),
                    topics=(
                        "公開講座「地域と健康」", "大学で遊ぼう 多世代交流デー",
                        "学生と歩く生田緑地", "公開講座「防災とまちづくり」",
                        "多世代クリスマス交流会", "学生による学習支援 成果発表会",
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "ikuta", "生田地区コミュニティ推進事業", support, community,
            ("chokai_ikuta", "jichikai_ikuta", "cafe_ikuta", "ward"),
            (
                Series(
                    "生田地区 多世代交流サロン", "ikuta", "生田地区コミュニティ拠点",
                    _FY_MONTHS, (2, 4), FRI, time(13, 30), 120,
                    (
                        Segment(65, 92, 8, 15, regulars=0.7),
                        Segment(30, 64, 1, 4, regulars=0.3),
                        Segment(3, 12, 2, 5, parent=0.5, regulars=0.2),
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "noborito", "のぼりとミーティング", support, community,
            (
                "ward", "shakyo", "chokai_noborito", "jichikai_noborito", "minsei_noborito",
                "cafe_noborito", "disability_inada", "clinic_noborito", "shotenkai",
            ),
            (
                Series(
                    "のぼりとミーティング（団体交流会）", "noborito", "多摩区役所 会議室",
                    (6, 9, 12, 3), 3, THU, two, 120,
                    (
                        Segment(40, 85, 15, 28, Pool.LEADER, regulars=0.8, loyalty=0.75),
                        Segment(25, 59, 3, 8, regulars=0.2),
                        Segment(19, 24, 0, 3, Pool.VOLUNTEER, regulars=0.0),
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "teamsuge", "地ケアつながりプロジェクト～TeamSUGE～", support, community,
            (
                "mimamori", "chokai_suge", "jichikai_suge", "minsei_suge", "cafe_suge",
                "clinic_suge", "shakyo",
            ),
            (
                Series(
                    "TeamSUGE 定例会", "suge", "菅北浦町会会館", (5, 7, 9, 11, 1, 3), 2, TUE,
                    two, 120,
                    (
                        Segment(40, 85, 10, 18, Pool.LEADER, regulars=0.8, loyalty=0.75),
                        Segment(30, 64, 2, 5, regulars=0.3),
                        Segment(60, 82, 2, 4, Pool.VOLUNTEER, regulars=0.8),
                    ),
                ),
                Series(
                    "TeamSUGE 地域資源めぐり現地ツアー", "suge", "菅地区一帯", (10,), 4, SAT,
                    ten, 180,
                    (
                        Segment(40, 85, 6, 12, Pool.LEADER, regulars=0.5),
                        Segment(6, 12, 2, 8, parent=0.6, regulars=0.0),
                        Segment(19, 29, 2, 6, regulars=0.0),
                        Segment(65, 85, 4, 10, regulars=0.3),
                    ),
                ),
            ),
        ),
        ProgramSpec(
            "nakanoshima", "中野島多世代つながり愛プロジェクト", support, community,
            (
                "chokai_nakanoshima", "jichikai_nakanoshima", "minsei_nakanoshima",
                "clinic_nakanoshima", "cafe_nakanoshima", "npo_kosodate",
            ),
            (
                Series(
                    "中野島多世代つながり愛プロジェクト協議会", "nakanoshima", "中野島町会会館",
                    (4, 6, 8, 10, 12, 2), 1, MON, time(19, 0), 90,
                    (
                        Segment(40, 85, 8, 14, Pool.LEADER, regulars=0.8, loyalty=0.8),
                        Segment(30, 45, 2, 5, regulars=0.4),
                        Segment(60, 80, 2, 4, Pool.VOLUNTEER, regulars=0.8),
                    ),
                ),
                Series(
                    "中野島 多世代あいさつ交流会", "nakanoshima", "中野島こども文化センター",
                    (5, 8, 11, 2), 3, SAT, ten, 120,
                    (
                        Segment(0, 12, 8, 16, parent=0.7, regulars=0.3),
                        Segment(60, 85, 6, 14, regulars=0.5),
                        Segment(13, 18, 0, 4, regulars=0.0),
                    ),
                ),
            ),
        ),
    )  # fmt: skip


ORGANIZATIONS = _organizations()
PROGRAMS = _programs()
PROGRAM_NAMES = tuple(spec.name for spec in PROGRAMS)
"""Every programme the demo launches, named as in the plan."""

CANCEL_REASONS_BY_MONTH: dict[int, tuple[str, ...]] = {
    7: ("熱中症警戒アラート発表のため中止",),
    8: ("台風接近のため中止", "熱中症警戒アラート発表のため中止"),
    9: ("台風のため中止",),
    10: ("台風のため中止",),
    1: ("大雪のため中止",),
    2: ("大雪のため中止",),
}
CANCEL_REASONS = (
    "荒天のため中止",
    "講師の急病のため中止",
    "会場設備の不具合のため中止",
    "感染症の流行状況を踏まえ中止",
)
REVERT_REASONS = (
    "受付時に別の参加者と取り違えたため取消",
    "別の開催回と取り違えて受付したため取消",
    "参加者本人の申し出により取消（当日欠席）",
)


# Residents ------------------------------------------------------------------------------


def sample_age(rng: random.Random) -> int:
    """One resident's age, drawn from the ward's age mix (:data:`AGE_BRACKETS`)."""
    low, high, _ = rng.choices(AGE_BRACKETS, weights=[share for _, _, share in AGE_BRACKETS])[0]
    return rng.randint(low, high)


@dataclass
class Resident:
    """A simulated resident. Only birth year (or band) and district are ever recorded."""

    index: int
    birth_year: int
    """Recorded unless ``band_only``; for band-only residents it is the simulation's own."""
    band_only: bool
    district: str
    activity: float
    disabled: bool
    volunteer: bool
    leader: bool
    parent: int | None = None

    def age_on(self, day: date) -> int:
        return day.year - self.birth_year


def make_residents(rng: random.Random, count: int, today: date) -> list[Resident]:
    """Residents with the ward's age mix, spread over the districts, some linked to a parent."""
    districts = list(DISTRICT_WEIGHTS)
    weights = [DISTRICT_WEIGHTS[d] for d in districts]
    residents: list[Resident] = []
    for index in range(count):
        age = sample_age(rng)
        residents.append(
            Resident(
                index=index,
                birth_year=today.year - age,
                band_only=rng.random() < BAND_ONLY_RATE,
                district=rng.choices(districts, weights=weights)[0],
                activity=rng.lognormvariate(0.0, 0.8),
                disabled=15 <= age <= 74 and rng.random() < 0.05,
                volunteer=(
                    (55 <= age <= 79 and rng.random() < 0.12)
                    or (19 <= age <= 24 and rng.random() < 0.08)
                    or (30 <= age <= 54 and rng.random() < 0.03)
                ),
                leader=40 <= age <= 84 and rng.random() < 0.08,
            )
        )
    adults_by_district: dict[str, list[Resident]] = {d: [] for d in districts}
    for resident in residents:
        if 20 <= resident.age_on(today) <= 60:
            adults_by_district[resident.district].append(resident)
    for resident in residents:
        age = resident.age_on(today)
        if age > 12:
            continue
        candidates = [
            adult.index
            for adult in adults_by_district[resident.district]
            if age + 24 <= adult.age_on(today) <= age + 44
        ]
        if candidates:
            resident.parent = rng.choice(candidates)
    return residents


# Simulation -----------------------------------------------------------------------------


@dataclass
class PlannedEvent:
    """One event as the simulation decided it; residents by index."""

    program: str
    title: str
    starts_at: datetime
    ends_at: datetime
    district: str
    venue: str
    upcoming: bool
    """On or after today: scheduled only, left open, no attendance."""
    cancel_reason: str | None = None
    attendees: list[int] = field(default_factory=list)
    reverts: list[tuple[int, str]] = field(default_factory=list)
    walk_ins: list[dict[str, int]] = field(default_factory=list)

    @property
    def commands(self) -> int:
        if self.upcoming:
            return 1
        if self.cancel_reason is not None:
            return 2
        return 2 + len(self.attendees) + len(self.reverts) + len(self.walk_ins)


def _nth_weekday(year: int, month: int, week: int, weekday: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (week - 1))


def _weighted_sample(
    rng: random.Random, items: Sequence[int], weights: Sequence[float], k: int
) -> list[int]:
    """k distinct items, each drawn with probability proportional to its weight."""
    if k <= 0 or not items:
        return []
    keyed = (
        (math.log(1.0 - rng.random()) / weight, item)
        for item, weight in zip(items, weights, strict=True)
    )
    return [item for _, item in heapq.nlargest(k, keyed)]


class Simulation:
    """Decides every event and who attends it; pure, given the random generator."""

    def __init__(
        self, rng: random.Random, plan: DemoPlan, today: date, band_of_age: Callable[[int], str]
    ) -> None:
        self.rng = rng
        self.plan = plan
        self.today = today
        self.band_of_age = band_of_age
        self.residents = make_residents(rng, plan.residents, today)
        self.by_birth_year: dict[int, list[int]] = {}
        for resident in self.residents:
            self.by_birth_year.setdefault(resident.birth_year, []).append(resident.index)
        ratio = plan.residents / REFERENCE_RESIDENTS
        self.small_scale = min(1.0, ratio) ** 0.5
        self.big_scale = ratio
        self.regulars: dict[tuple[str, int, int], list[int]] = {}

    def events(self) -> list[PlannedEvent]:
        """Every event from the first fiscal year to four weeks after today, in date order."""
        last_day = self.today + timedelta(days=UPCOMING_DAYS)
        first_year = fiscal_year_of(self.today) - self.plan.fiscal_years + 1
        occurrences: list[tuple[datetime, str, int, ProgramSpec, Series]] = []
        for spec in PROGRAMS:
            for series_index, series in enumerate(spec.series):
                for fiscal_year in range(first_year, fiscal_year_of(last_day) + 1):
                    weeks = (series.week,) if isinstance(series.week, int) else series.week
                    dates = [
                        _nth_weekday(
                            fiscal_year if month >= 4 else fiscal_year + 1,
                            month,
                            week,
                            series.weekday,
                        )
                        for month in series.months
                        for week in weeks
                    ]
                    for number, day in enumerate(dates):
                        if day > last_day:
                            continue
                        starts_at = datetime.combine(day, series.start, tzinfo=JST)
                        title = series.title
                        if series.topics:
                            title = f"{title} {series.topics[number % len(series.topics)]}"
                        occurrences.append((starts_at, title, series_index, spec, series))
        occurrences.sort(key=lambda o: (o[0], o[1]))
        return [self._decide(*occurrence) for occurrence in occurrences]

    def _decide(
        self, starts_at: datetime, title: str, series_index: int, spec: ProgramSpec, series: Series
    ) -> PlannedEvent:
        day = starts_at.date()
        event = PlannedEvent(
            program=spec.key,
            title=title,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=series.minutes),
            district=series.district,
            venue=series.venue,
            upcoming=day >= self.today,
        )
        if event.upcoming:
            return event
        if self.rng.random() < CANCEL_RATE:
            reasons = CANCEL_REASONS_BY_MONTH.get(day.month, ()) + CANCEL_REASONS
            event.cancel_reason = self.rng.choice(reasons)
            return event
        event.attendees = self._attendees(spec.key, series_index, series, day)
        event.reverts = [
            (attendee, self.rng.choice(REVERT_REASONS))
            for attendee in event.attendees
            if self.rng.random() < REVERT_RATE
        ]
        if series.walk_ins is not None:
            event.walk_ins = self._walk_ins(series)
        return event

    def _eligible(self, segment: Segment, day: date) -> list[int]:
        eligible: list[int] = []
        for birth_year in range(day.year - segment.max_age, day.year - segment.min_age + 1):
            for index in self.by_birth_year.get(birth_year, ()):
                resident = self.residents[index]
                if (
                    segment.pool is Pool.ANY
                    or (segment.pool is Pool.DISABLED and resident.disabled)
                    or (segment.pool is Pool.VOLUNTEER and resident.volunteer)
                    or (segment.pool is Pool.LEADER and resident.leader)
                ):
                    eligible.append(index)
        return eligible

    def _weight(self, index: int, series: Series) -> float:
        resident = self.residents[index]
        if resident.district == series.district:
            return resident.activity
        return resident.activity * (0.12 if series.local else 0.6)

    def _count(self, low: int, high: int, series: Series) -> tuple[int, int]:
        scale = self.big_scale if series.big else self.small_scale
        scaled_low = round(low * scale)
        return scaled_low, max(scaled_low, round(high * scale))

    def _attendees(self, program: str, series_index: int, series: Series, day: date) -> list[int]:
        rng = self.rng
        chosen: dict[int, None] = {}
        for segment_index, segment in enumerate(series.segments):
            low, high = self._count(segment.low, segment.high, series)
            wanted = rng.randint(low, high)
            eligible = [i for i in self._eligible(segment, day) if i not in chosen]
            if wanted == 0 or not eligible:
                continue
            eligible_set = set(eligible)
            key = (program, series_index, segment_index)
            regulars = [i for i in self.regulars.get(key, []) if i in eligible_set]
            target = round(high * segment.regulars)
            if len(regulars) < target:
                regular_set = set(regulars)
                others = [i for i in eligible if i not in regular_set]
                weights = [self._weight(i, series) for i in others]
                regulars += _weighted_sample(rng, others, weights, target - len(regulars))
            self.regulars[key] = regulars
            present = [i for i in regulars if rng.random() < segment.loyalty]
            rng.shuffle(present)
            picks = present[:wanted]
            if len(picks) < wanted:
                regular_set = set(regulars)
                others = [i for i in eligible if i not in regular_set]
                weights = [self._weight(i, series) for i in others]
                picks += _weighted_sample(rng, others, weights, wanted - len(picks))
            for index in picks:
                chosen[index] = None
                parent = self.residents[index].parent
                if segment.parent and parent is not None and rng.random() < segment.parent:
                    chosen[parent] = None
        return list(chosen)

    def _walk_ins(self, series: Series) -> list[dict[str, int]]:
        assert series.walk_ins is not None  # noqa: S101 - only called for such series
        low, high = self._count(*series.walk_ins, series)
        total = self.rng.randint(low, high)
        desks = 3 if series.big else 1
        segments = series.segments
        weights = [segment.high for segment in segments]
        tallies: list[dict[str, int]] = []
        for desk in range(desks):
            share = total // desks + (1 if desk < total % desks else 0)
            counts: dict[str, int] = {}
            for _ in range(share):
                segment = self.rng.choices(segments, weights=weights)[0]
                band = self.band_of_age(self.rng.randint(segment.min_age, segment.max_age))
                counts[band] = counts.get(band, 0) + 1
            if counts:
                tallies.append(counts)
        return tallies


# Recording through the application ------------------------------------------------------


class _Chunks:
    """Groups commands into transactions of about CHUNK_SIZE commands."""

    def __init__(self, app: Tsunagari, size: int) -> None:
        self.app = app
        self.size = size
        self.pending = 0
        self.transaction: AbstractContextManager[object] | None = None

    def __enter__(self) -> _Chunks:
        self._begin()
        return self

    def _begin(self) -> None:
        self.transaction = self.app.storage.atomic()
        self.transaction.__enter__()
        self.pending = 0

    def tick(self) -> None:
        """One more command done: commit the chunk when it is full and start the next."""
        self.pending += 1
        if self.pending >= self.size:
            self._end(None, None, None)
            self._begin()

    def _end(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        transaction, self.transaction = self.transaction, None
        if transaction is not None:
            transaction.__exit__(exc_type, exc, traceback)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end(exc_type, exc, traceback)


class _Progress:
    """Reports a fixed budget of units over a known number of steps."""

    def __init__(self, report: Callable[[int], None]) -> None:
        self.report = report
        self.total = 0

    def spread(self, budget: int, steps: int) -> Callable[[], None]:
        """A function to call once per step; ``steps`` calls report ``budget`` units in all."""
        if steps == 0:
            self.add(budget)
            return lambda: None
        done = [0, 0]  # steps done, units reported

        def step() -> None:
            done[0] += 1
            units = budget * done[0] // steps - done[1]
            if units:
                done[1] += units
                self.add(units)

        return step

    def add(self, units: int) -> None:
        if units:
            self.total += units
            self.report(units)


def _timeline_units(plan: DemoPlan) -> int:
    return plan.residents * plan.fiscal_years * TIMELINE_UNITS_PER_RESIDENT_YEAR


def plan_size(plan: DemoPlan) -> int:
    """How many progress units :func:`load_demo` reports in all, whatever ``today`` is.

    One per organisation, programme and resident, then a budget for the events, which
    depends on the plan only, spread evenly over their commands.
    """
    return len(ORGANIZATIONS) + len(PROGRAMS) + plan.residents + _timeline_units(plan)


def load_demo(
    app: Tsunagari,
    plan: DemoPlan,
    *,
    today: date,
    progress: Callable[[int], None] = lambda n: None,
) -> DemoSummary:
    """Record the demo data set through the application's commands.

    ``today`` decides the fiscal years covered and which events are past (held, closed) or
    upcoming (open); it must not be after the application's own today, since residents are
    registered on the application's date and none may be born after it.

    Commands are committed in chunks of :data:`CHUNK_SIZE`: if one fails, the chunks before it
    stay recorded (the log is append-only) and the error is raised.
    """
    missing = [d for d in DISTRICT_IDS if d not in app.districts.ids]
    if missing:
        raise ValueError(f"the demo needs the default districts; missing: {', '.join(missing)}")
    if today > app.today():
        raise ValueError(f"today ({today}) is after the application's date ({app.today()})")
    rng = random.Random(plan.seed)  # noqa: S311 - reproducible demo data, not secrets
    simulation = Simulation(rng, plan, today, lambda age: app.bands.band_for_age(age).id)
    planned = simulation.events()
    first_year = fiscal_year_of(today) - plan.fiscal_years + 1
    clock = _SimulatedClock(
        start=datetime.combine(date(first_year, 3, 1), time(9), tzinfo=JST), end=app.clock()
    )
    real_clock, app.clock = app.clock, clock
    try:
        with _Chunks(app, CHUNK_SIZE) as chunks:
            recorder = _Recorder(app, plan, chunks, _Progress(progress), clock)
            organizations = recorder.organizations()
            recorder.programs(organizations)
            recorder.residents(simulation.residents, today)
            recorder.timeline(planned)
            recorder.remaining_residents()
    finally:
        app.clock = real_clock
    if recorder.progress.total != plan_size(plan):  # pragma: no cover - a bug in this module
        raise AssertionError(f"reported {recorder.progress.total} of {plan_size(plan)} units")
    return recorder.summary()


class _SimulatedClock:
    """Records each demo fact at a plausible moment (a check-in when the event starts...),
    never going back in time nor past the real present, so "as of" questions make sense."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.now = min(start, end)
        self.end = end

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: datetime) -> None:
        self.now = min(max(self.now + timedelta(microseconds=1), moment), self.end)


class _Recorder:
    """Sends the simulated data through the application's commands and counts what it stored."""

    def __init__(
        self,
        app: Tsunagari,
        plan: DemoPlan,
        chunks: _Chunks,
        progress: _Progress,
        clock: _SimulatedClock,
    ) -> None:
        self.app = app
        self.plan = plan
        self.chunks = chunks
        self.progress = progress
        self.clock = clock
        self.requests = 0
        self.program_ids: dict[str, UUID] = {}
        self.residents_to_register: list[Resident] = []
        self.today = clock.end.astimezone(JST).date()
        self.registered: dict[int, UUID] = {}
        self.counts = dict.fromkeys(
            (
                "organizations",
                "programs",
                "events",
                "cancelled_events",
                "participants",
                "check_ins",
                "reverted_check_ins",
                "walk_in_tallies",
            ),
            0,
        )
        self.stored = 0

    def _by(self, district: str | None) -> Provenance:
        """Who records the next command: the loader, at the district's desk."""
        self.requests += 1
        return Provenance(
            actor_id=ACTOR_ID,
            actor_role=Role.ADMIN,
            desk_id=f"desk-{district or 'ward'}",
            request_id=f"demo-{self.plan.seed}-{self.requests:07d}",
        )

    def _stored(self, what: str | None = None) -> None:
        """One command stored one event."""
        self.stored += 1
        if what is not None:
            self.counts[what] += 1
        self.chunks.tick()

    def organizations(self) -> dict[str, UUID]:
        ids: dict[str, UUID] = {}
        for spec in ORGANIZATIONS:
            outcome = self.app.register_organization(
                name=spec.name,
                kind=spec.kind,
                district_id=spec.district,
                recorded_by=self._by(spec.district),
            )
            ids[spec.key] = outcome.result.id
            self._stored("organizations")
            self.progress.add(1)
        return ids

    def programs(self, organizations: dict[str, UUID]) -> None:
        for spec in PROGRAMS:
            outcome = self.app.launch_program(
                name=spec.name,
                policy=spec.policy,
                area=spec.area,
                host_organization_ids=[organizations[key] for key in spec.hosts],
                recorded_by=self._by(None),
            )
            self.program_ids[spec.key] = outcome.result.id
            self._stored("programs")
            self.progress.add(1)

    def residents(self, residents: list[Resident], today: date) -> None:
        """Residents register at the desk of their first event (or at the end, if none)."""
        self.residents_to_register = residents
        self.today = today

    def participant(self, index: int) -> UUID:
        """The resident's participant id, registering them now if they are new."""
        known = self.registered.get(index)
        if known is not None:
            return known
        resident = self.residents_to_register[index]
        band_id = None
        birth_year: int | None = resident.birth_year
        if resident.band_only:
            band_id = self.app.bands.band_for_age(resident.age_on(self.today)).id
            birth_year = None
        outcome = self.app.register_participant(
            birth_year=birth_year,
            band_id=band_id,
            district_id=resident.district,
            recorded_by=self._by(resident.district),
        )
        self.registered[index] = outcome.result.id
        self._stored("participants")
        self.progress.add(1)
        return outcome.result.id

    def remaining_residents(self) -> None:
        self.clock.advance_to(self.clock.end)
        for index in range(len(self.residents_to_register)):
            self.participant(index)

    def timeline(self, planned: list[PlannedEvent]) -> None:
        """Every event in date order: scheduled, attended, then closed or cancelled."""
        commands = sum(event.commands for event in planned)
        step = self.progress.spread(_timeline_units(self.plan), commands)
        for event in planned:
            self._event(event, step)

    def _event(self, planned: PlannedEvent, step: Callable[[], None]) -> None:
        app = self.app
        district = planned.district
        self.clock.advance_to(planned.starts_at - timedelta(days=14))
        event_id = app.schedule_event(
            program_id=self.program_ids[planned.program],
            title=planned.title,
            starts_at=planned.starts_at,
            ends_at=planned.ends_at,
            district_id=district,
            venue=planned.venue,
            recorded_by=self._by(district),
        ).result.id
        self._stored("events")
        step()
        if planned.upcoming:
            return
        if planned.cancel_reason is not None:
            self.clock.advance_to(planned.starts_at - timedelta(hours=3))
            app.cancel_event(event_id, reason=planned.cancel_reason, recorded_by=self._by(district))
            self._stored("cancelled_events")
            step()
            return
        self.clock.advance_to(planned.starts_at - timedelta(minutes=10))
        for attendee in planned.attendees:
            participant_id = self.participant(attendee)
            self.clock.advance_to(self.clock.now + timedelta(seconds=20))
            outcome = app.check_in(
                event_id,
                participant_id=participant_id,
                recorded_by=self._by(district),
            )
            if not outcome.created:  # pragma: no cover - the simulation checks in once
                raise AssertionError(f"resident {attendee} was already checked in")
            self._stored("check_ins")
            step()
        self.clock.advance_to(planned.ends_at - timedelta(minutes=15))
        for attendee, reason in planned.reverts:
            app.revert_check_in(
                event_id,
                self.registered[attendee],
                reason=reason,
                recorded_by=self._by(district),
            )
            self._stored("reverted_check_ins")
            step()
        for counts in planned.walk_ins:
            app.record_walk_ins(event_id, counts=counts, recorded_by=self._by(district))
            self._stored("walk_in_tallies")
            step()
        self.clock.advance_to(planned.ends_at + timedelta(minutes=10))
        app.close_event(event_id, recorded_by=self._by(district))
        self._stored()
        step()

    def summary(self) -> DemoSummary:
        return DemoSummary(**self.counts, stored_events=self.stored)
