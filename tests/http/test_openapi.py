"""The OpenAPI document: one tag per operation, stable operation ids, examples, statuses.

A client generator names its methods after the operation ids and groups them by tag; a
front-desk developer reads the examples in /docs. Renaming a route function renames an
operation, so the ids are pinned here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from application.personal_data import DisclosureView
from application.views import (
    CheckInView,
    EventView,
    OrganizationView,
    ParticipantView,
    ProgramView,
    WalkInView,
)
from domain.provenance import Role
from interfaces.http.app import TAGS
from interfaces.http.schemas import CheckInListOut, WalkInListOut
from tests.support import Api

OPERATIONS = {
    ("get", "/health"): "health",
    ("post", "/organizations"): "register_organization",
    ("get", "/organizations/{organization_id}"): "get_organization",
    ("post", "/programs"): "launch_program",
    ("get", "/programs/{program_id}"): "get_program",
    ("post", "/events"): "schedule_event",
    ("get", "/events/{event_id}"): "get_event",
    ("post", "/events/{event_id}/reschedule"): "reschedule_event",
    ("post", "/events/{event_id}/cancel"): "cancel_event",
    ("post", "/events/{event_id}/close"): "close_event",
    ("post", "/events/{event_id}/check-ins"): "check_in",
    ("get", "/events/{event_id}/check-ins"): "list_check_ins",
    ("get", "/events/{event_id}/check-ins/{participant_id}"): "get_check_in",
    ("post", "/events/{event_id}/check-ins/{participant_id}/revert"): "revert_check_in",
    ("post", "/events/{event_id}/walk-ins"): "record_walk_ins",
    ("get", "/events/{event_id}/walk-ins"): "list_walk_ins",
    ("get", "/events/{event_id}/walk-ins/{tally_id}"): "get_walk_ins",
    ("post", "/events/{event_id}/walk-ins/{tally_id}/revert"): "revert_walk_ins",
    ("post", "/participants"): "register_participant",
    ("get", "/participants/{participant_id}"): "get_participant",
    ("post", "/participants/{participant_id}/corrections"): "correct_personal_data",
    ("post", "/participants/{participant_id}/consents"): "record_consent",
    ("post", "/participants/{participant_id}/sensitive-data"): "record_sensitive_data",
    ("post", "/participants/{participant_id}/erasure"): "erase_participant",
    ("get", "/participants/{participant_id}/disclosure"): "disclose_participant",
    ("get", "/indicators"): "get_indicators",
    ("get", "/indicators/progress"): "get_progress",
    ("get", "/indicators.csv"): "get_indicators_csv",
    ("get", "/audit/log"): "get_audit_log",
    ("get", "/audit/streams/{stream_id}"): "get_audit_stream",
}

SUCCESS = {
    "register_organization": {"201"},
    "launch_program": {"201"},
    "schedule_event": {"201"},
    "reschedule_event": {"200"},
    "cancel_event": {"201"},
    "close_event": {"201"},
    "register_participant": {"201"},
    "check_in": {"201", "200"},
    "record_walk_ins": {"201"},
    "record_consent": {"201", "200"},
    "record_sensitive_data": {"201"},
}
"""The success statuses a route answers, as tests/http elsewhere see them answered."""


@pytest.fixture
def spec(api: Api) -> dict[str, Any]:
    answer = api.client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
    }


def test_every_operation_has_its_stable_id_and_one_declared_tag(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    assert {key: operation["operationId"] for key, operation in operations.items()} == OPERATIONS
    declared = [tag["name"] for tag in spec["tags"]]
    assert declared == [tag["name"] for tag in TAGS]
    used = set()
    for key, operation in operations.items():
        assert len(operation["tags"]) == 1, key
        assert operation["tags"][0] in declared, key
        used.add(operation["tags"][0])
    assert used == set(declared)  # no tag without its operations


def test_each_command_documents_the_statuses_it_answers(spec: dict[str, Any]) -> None:
    by_id = {operation["operationId"]: operation for operation in _operations(spec).values()}
    for operation_id, statuses in SUCCESS.items():
        documented = {code for code in by_id[operation_id]["responses"] if code.startswith("2")}
        assert documented == statuses, operation_id


def _exemplified(spec: dict[str, Any], schema: dict[str, Any], seen: frozenset[str]) -> bool:
    """Whether a schema shows an example: its own, or one for each of its properties (a
    property that is another model, or a list of them, by that model's)."""
    if "examples" in schema or "example" in schema or "enum" in schema:
        return True  # an enum lists its values
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return True
        return _exemplified(spec, spec["components"]["schemas"][name], seen | {name})
    if schema.get("type") == "array" and "items" in schema:
        return _exemplified(spec, schema["items"], seen)
    alternatives = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if alternatives:
        return all(_exemplified(spec, s, seen) for s in alternatives)
    properties: dict[str, Any] = schema.get("properties") or {}
    return bool(properties) and all(_exemplified(spec, p, seen) for p in properties.values())


def test_every_json_body_and_answer_shows_an_example(spec: dict[str, Any]) -> None:
    missing = []
    for (method, path), operation in _operations(spec).items():
        bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
        for code, response in operation["responses"].items():
            if code.startswith("2"):
                bodies.append((code, response.get("content", {})))
        for where, content in bodies:
            schema = content.get("application/json", {}).get("schema")
            if schema is not None and not _exemplified(spec, schema, frozenset()):
                missing.append((method, path, where))
    assert missing == []


@pytest.mark.parametrize(
    "model",
    [
        OrganizationView,
        ProgramView,
        EventView,
        ParticipantView,
        CheckInView,
        WalkInView,
        CheckInListOut,
        WalkInListOut,
    ],
)
def test_each_example_answer_is_one_the_api_could_give(
    spec: dict[str, Any], model: type[BaseModel]
) -> None:
    # As the model declares it: the document leaves out its null values (FastAPI's encoder).
    (example,) = model.model_json_schema()["examples"]
    assert spec["components"]["schemas"][model.__name__]["examples"] == [_without_nulls(example)]
    answer = model.model_validate(example)
    assert answer.model_dump(mode="json") == example


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def test_the_disclosure_s_examples_make_a_disclosure(spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"]["DisclosureView"]
    (participant,) = spec["components"]["schemas"]["ParticipantView"]["examples"]
    fields = {
        name: prop["examples"][0]
        for name, prop in schema["properties"].items()
        if name != "participant"
    }
    disclosure = DisclosureView.model_validate({"participant": participant, **fields})
    assert disclosure.attendance[0].history[0].type == "Attendance.CheckedIn"


def _shape(value: Any) -> Any:
    """What a value holds, without the values: keys all the way down."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "·"


def test_the_disclosure_and_audit_examples_have_the_shape_of_real_answers(
    api: Api, spec: dict[str, Any], make_ids: Callable[..., dict[str, str]]
) -> None:
    admin = api.headers(Role.ADMIN)
    event = make_ids(birth_years=())["event"]
    person = api.client.post(
        "/participants",
        json={
            "birth_year": 1948,
            "district_id": "suge",
            "name": "多摩 花子",
            "contact": "044-000-0000",
            "birth_date": "1948-03-09",
        },
        headers=admin,
    ).json()["id"]
    purpose = {"purpose": "合理的配慮の提供"}
    api.client.post(
        f"/participants/{person}/consents", json={**purpose, "given": True}, headers=admin
    )
    api.client.post(
        f"/participants/{person}/sensitive-data",
        json={**purpose, "category": "disability", "detail": "車いすを使用"},
        headers=admin,
    )
    api.client.post(f"/events/{event}/check-ins", json={"participant_id": person}, headers=admin)
    real = api.client.get(f"/participants/{person}/disclosure", headers=admin).json()

    # As the model declares them: the document leaves out null values (FastAPI's encoder).
    schema = DisclosureView.model_json_schema()["properties"]
    for field in ("sensitive_data", "history", "attendance"):
        (example,) = schema[field]["examples"]
        assert _shape(example) == _shape(real[field]), field
    examples = schema["history"]["examples"][0] + schema["attendance"]["examples"][0][0]["history"]
    entries = real["history"] + real["attendance"][0]["history"]
    for example in examples:
        (same,) = [entry for entry in entries if entry["type"] == example["type"]]
        assert _shape(example["details"]) == _shape(same["details"]), example["type"]

    audit = spec["components"]["schemas"]["AuditEntryOut"]["properties"]
    (kind,), (topic,) = audit["type"]["examples"], audit["topic"]["examples"]
    assert topic.endswith(f":{kind}")
    log = api.client.get("/audit/log", params={"type": kind}, headers=admin).json()["entries"]
    assert [entry["topic"] for entry in log] == [topic]
    assert log[0]["stream_id"] == person  # the example's stream is a participant's too
