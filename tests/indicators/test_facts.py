"""Reading stored check-ins into facts: the shortcut for the transcoder's own layout and the
full decode give the same fact, whatever the layout of the JSON."""

from __future__ import annotations

import json
from datetime import datetime

from eventsourcing.utils import get_topic

from domain.attendance import Attendance
from projections.indicators.facts import (
    CHECKED_IN_STATE,
    AttendanceFact,
    Facts,
    Recorded,
    StoredRow,
    epoch_us,
)

EVENT = "3e5eca9a84d154289d7aa5782259d9ca"
PERSON = "e686e55473e85ac9835fbdafd9cfba47"
ATTENDANCE = "0f" * 16


def state(*, reordered: bool = False, desk: str = "desk-nakanoshima") -> bytes:
    """A check-in's state as the library's JSON transcoder writes it (or with its keys in
    another order, as another writer might)."""
    fields = {
        "timestamp": {"_type_": "datetime_iso", "_data_": "2024-04-01T18:50:20.250000+09:00"},
        "originator_topic": "domain.attendance:Attendance",
        "event_id": {"_type_": "uuid_hex", "_data_": EVENT},
        "participant_id": {"_type_": "uuid_hex", "_data_": PERSON},
        "recorded_by": {
            "_type_": "provenance",
            "_data_": {
                "actor_id": "demo-loader",
                "actor_role": {"_type_": "Role", "_data_": "admin"},
                "desk_id": desk,
                "request_id": "demo-2026-0000057",
            },
        },
    }
    if reordered:
        fields = dict(reversed(fields.items()))
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def read(stored: bytes) -> Recorded | None:
    row = StoredRow(7, ATTENDANCE, get_topic(Attendance.CheckedIn), stored)
    return Facts().read(row)


def test_a_check_in_in_the_transcoders_layout_is_read_without_a_full_decode() -> None:
    assert CHECKED_IN_STATE.match(state()) is not None
    expected = Recorded(
        7,
        epoch_us(datetime.fromisoformat("2024-04-01T18:50:20.250000+09:00")),
        AttendanceFact(ATTENDANCE, EVENT, PERSON, True),
    )
    assert read(state()) == expected


def test_any_other_layout_is_decoded_in_full_to_the_same_fact() -> None:
    assert CHECKED_IN_STATE.match(state(reordered=True)) is None
    assert read(state(reordered=True)) == read(state())


def test_what_follows_the_values_read_does_not_matter() -> None:
    assert read(state(desk='desk "west", 2F')) == read(state())


def test_a_check_in_recorded_after_the_cut_is_left_out_either_way() -> None:
    cut = epoch_us(datetime.fromisoformat("2024-04-01T18:50:20+09:00"))
    for stored in (state(), state(reordered=True)):
        row = StoredRow(7, ATTENDANCE, get_topic(Attendance.CheckedIn), stored)
        assert Facts().read(row, until_us=cut) is None
        assert Facts().read(row, until_us=cut + 250_000) is not None
