"""Settings read from the environment: where serve runs the projections."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.settings import ProjectionsMode, Settings, WriterMode


@pytest.mark.parametrize(
    ("given", "mode"),
    [
        ("process", ProjectionsMode.PROCESS),
        ("thread", ProjectionsMode.THREAD),
        ("off", ProjectionsMode.OFF),
        ("true", ProjectionsMode.PROCESS),
        ("False", ProjectionsMode.OFF),
        (" Thread ", ProjectionsMode.THREAD),
    ],
)
def test_projections_mode_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, given: str, mode: ProjectionsMode
) -> None:
    monkeypatch.setenv("TSUNAGARI_RUN_PROJECTIONS", given)
    assert Settings().run_projections is mode


def test_an_unknown_projections_mode_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGARI_RUN_PROJECTIONS", "sometimes")
    with pytest.raises(ValidationError, match="run_projections"):
        Settings()


def test_settings_pass_to_a_worker_process_through_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        database_schema="ward_tama",
        run_projections=ProjectionsMode.THREAD,
    )
    env = settings.as_environment()
    assert env["TSUNAGARI_DATABASE_URL"] == settings.database_url
    assert env["TSUNAGARI_DATABASE_SCHEMA"] == "ward_tama"
    assert env["TSUNAGARI_RUN_PROJECTIONS"] == "thread"
    assert "TSUNAGARI_TARGETS_FILE" not in env  # unset stays unset
    for name, value in env.items():  # as the worker process reads them
        monkeypatch.setenv(name, value)
    assert Settings() == settings


@pytest.mark.parametrize(
    ("given", "mode"), [("process", WriterMode.PROCESS), ("thread", WriterMode.THREAD)]
)
def test_the_check_in_writer_runs_where_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, given: str, mode: WriterMode
) -> None:
    monkeypatch.setenv("TSUNAGARI_CHECK_IN_WRITER", given)
    assert Settings().check_in_writer is mode
    assert Settings().as_environment()["TSUNAGARI_CHECK_IN_WRITER"] == given


def test_an_unknown_check_in_writer_mode_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TSUNAGARI_CHECK_IN_WRITER", "elsewhere")
    with pytest.raises(ValidationError, match="check_in_writer"):
        Settings()
