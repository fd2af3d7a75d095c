"""The log's notifications read on the driver (``TsunagariRecorder.select_notifications``)
are exactly what the library's own ORM query reads, for every way a reader asks."""

from __future__ import annotations

import pytest
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder

from interfaces.bootstrap import Services
from tests.application.test_group_commit import BY, _event, _participants


@pytest.mark.parametrize(
    ("start", "limit", "stop", "inclusive"),
    [
        (None, 1000, None, True),
        (1, 1000, None, True),
        (3, 4, None, True),
        (3, 4, None, False),  # a subscription's pull: after the last one it has
        (2, 1000, 6, True),
        (2, 1000, 6, False),
        (5, 1, 5, True),
        (5, 1000, 4, True),  # nothing between
        (1000, 10, None, False),  # past the end
    ],
)
def test_notifications_are_read_as_the_library_reads_them(
    services: Services, start: int | None, limit: int, stop: int | None, inclusive: bool
) -> None:
    app = services.app
    event_id = _event(app)
    for person in _participants(app, 3):
        app.check_in(event_id, participant_id=person, recorded_by=BY)
    recorder = app.recorder
    ours = recorder.select_notifications(start, limit, stop, inclusive_of_start=inclusive)
    theirs = SQLAlchemyApplicationRecorder.select_notifications(
        recorder,  # type: ignore[arg-type]
        start,
        limit,
        stop,
        inclusive_of_start=inclusive,
    )
    assert ours == theirs
    if start == 1 and stop is None:
        assert len(ours) == 9  # organisation, programme, event, 3 people, 3 check-ins
        assert {type(n.originator_id) for n in ours} == {type(theirs[0].originator_id)}


def test_notifications_of_some_topics_are_read_as_the_library_reads_them(
    services: Services,
) -> None:
    app = services.app
    event_id = _event(app)
    (person,) = _participants(app, 1)
    app.check_in(event_id, participant_id=person, recorded_by=BY)
    recorder = app.recorder
    topic = recorder.select_notifications(1, 100)[-1].topic
    ours = recorder.select_notifications(1, 100, topics=[topic])
    assert [n.topic for n in ours] == [topic]
    assert ours == SQLAlchemyApplicationRecorder.select_notifications(
        recorder,  # type: ignore[arg-type]
        1,
        100,
        topics=[topic],
    )
