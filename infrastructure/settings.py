"""Settings from the environment (prefix ``TSUNAGARI_``), validated once at start."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/tsunagari.sqlite3"


class LogFormat(Enum):
    AUTO = "auto"  # JSON when stderr is not a terminal, coloured console lines when it is
    JSON = "json"
    CONSOLE = "console"


class ProjectionsMode(Enum):
    """Where `serve` runs the indicator projections."""

    PROCESS = "process"  # a worker process that serve starts, watches and stops
    THREAD = "thread"  # a thread of the server's own process
    OFF = "off"  # not at all: `tsunagari projections run` elsewhere


class WriterMode(Enum):
    """Where `serve` writes the desks' check-ins."""

    PROCESS = "process"  # a writer process that serve starts, watches and stops
    THREAD = "thread"  # the group-commit writer thread of the server's own process


class Settings(BaseSettings):
    """Everything Tsunagari reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="TSUNAGARI_", extra="ignore", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="sqlite:///path/to/file.sqlite3 or postgresql+psycopg://user@host/db",
    )
    database_schema: str | None = Field(
        None, description="PostgreSQL schema for every table (tests use their own)"
    )
    log_format: LogFormat = LogFormat.AUTO
    log_level: str = "INFO"
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    aggregate_cache_size: int = Field(10_000, ge=0)
    targets_file: Path | None = Field(
        None, description="Targets (目標値) JSON; default: the packaged placeholder targets"
    )
    run_projections: ProjectionsMode = Field(
        ProjectionsMode.PROCESS,
        description="Where `serve` follows the log with the indicator projections: process, "
        "thread or off (true and false mean process and off)",
    )

    check_in_writer: WriterMode = Field(
        WriterMode.PROCESS,
        description="Where `serve` writes check-ins: a writer process of their own (process), "
        "or a thread of the server (thread)",
    )

    @field_validator("run_projections", mode="before")
    @classmethod
    def _projections_mode(cls, value: object) -> object:
        if isinstance(value, bool):
            return ProjectionsMode.PROCESS if value else ProjectionsMode.OFF
        if isinstance(value, str):
            lowered = value.strip().lower()
            legacy = {"true": "process", "1": "process", "false": "off", "0": "off"}
            return legacy.get(lowered, lowered)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        if url.startswith("sqlite:///") and not url.endswith(":memory:"):
            return url
        if url.startswith("postgresql+psycopg://"):
            return url
        raise ValueError(
            "TSUNAGARI_DATABASE_URL must be sqlite:///<file> or postgresql+psycopg://..., "
            f"not {url!r}"
        )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        upper = level.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(
                f"TSUNAGARI_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}"
            )
        return upper

    def as_environment(self) -> dict[str, str]:
        """These settings as the environment variables that give them to another process."""
        env: dict[str, str] = {}
        for name, value in self.model_dump(mode="json").items():
            if value is not None:
                env[f"TSUNAGARI_{name.upper()}"] = str(value)
        return env

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        return Path(self.database_url.removeprefix("sqlite:///"))
