"""Reference data the plan fixes (districts, policies, areas) and the transcodings that store
what domain events carry: pinned, and round-tripped for any value."""

from __future__ import annotations

import json
from datetime import date
from enum import Enum
from typing import Any

import pytest
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given
from hypothesis import strategies as st

from application.transcodings import ENUMS_IN_EVENTS, register_domain_transcodings
from domain.districts import DEFAULT_DISTRICTS
from domain.errors import UnknownReference
from domain.organizations import OrganizationKind
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role


def test_the_district_table_is_tama_ward_s_five_districts_under_its_version() -> None:
    assert DEFAULT_DISTRICTS.version == "districts-2026.1"
    assert [(d.id, d.name_ja, d.name_en) for d in DEFAULT_DISTRICTS.districts] == [
        ("noborito", "登戸地区", "Noborito"),
        ("inada", "稲田地区", "Inada"),
        ("suge", "菅地区", "Suge"),
        ("nakanoshima", "中野島地区", "Nakanoshima"),
        ("ikuta", "生田地区", "Ikuta"),
    ]
    assert DEFAULT_DISTRICTS.get("suge").name_ja == "菅地区"


def test_an_unknown_district_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownReference) as refused:
        DEFAULT_DISTRICTS.get("kawasaki")
    assert str(refused.value) == (
        "unknown district 'kawasaki'; known districts: noborito, inada, suge, nakanoshima, ikuta"
    )


def test_policies_and_areas_are_the_plan_s() -> None:
    assert [policy.value for policy in Policy] == ["2-1", "2-2"]
    assert [area.value for area in ProgramArea] == ["children", "elderly_disabled", "community"]


def _transcoder() -> JSONTranscoder:
    transcoder = JSONTranscoder()
    register_domain_transcodings(transcoder)
    return transcoder


_text = st.text(max_size=20)
provenances = st.builds(
    Provenance,
    actor_id=_text,
    actor_role=st.sampled_from(Role),
    desk_id=st.none() | _text,
    request_id=st.none() | _text,
)
members = st.one_of(*(st.sampled_from(enum_type) for enum_type in ENUMS_IN_EVENTS))
values = st.recursive(
    st.dates() | provenances | members | st.integers() | _text | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@given(values)
def test_every_value_an_event_carries_reads_back_as_it_was_written(value: Any) -> None:
    transcoder = _transcoder()

    assert transcoder.decode(transcoder.encode(value)) == value


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (date(2026, 6, 14), "date_iso"),
        (Provenance(actor_id="t1", actor_role=Role.DESK), "provenance"),
        (Role.AUDITOR, "Role"),
        (OrganizationKind.COMMUNITY_CAFE, "OrganizationKind"),
        (Policy.MUTUAL_SUPPORT, "Policy"),
        (ProgramArea.CHILDREN, "ProgramArea"),
    ],
)
def test_a_stored_value_names_its_type_and_holds_a_plain_value(value: object, named: str) -> None:
    stored = json.loads(_transcoder().encode(value))

    assert stored["_type_"] == named
    plain = stored["_data_"]
    if isinstance(value, Enum):
        assert plain == value.value  # an Enum as its value, never its Python name
    elif isinstance(value, date):
        assert plain == "2026-06-14"
    else:
        assert plain["actor_id"] == "t1"
