"""Definition parameters: the generation bands, the small-event cap, the loose-tie threshold.

Evaluators can try other values (``tsunagari indicators --definitions FILE``) on the same log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.errors import InvalidValue
from domain.generations import DEFAULT_BANDS, Band, BandScheme, CoarseGroup

DEFINITIONS_VERSION = "indicators-v1"


@dataclass(frozen=True)
class Parameters:
    """Everything an indicator definition may vary on."""

    bands: BandScheme = DEFAULT_BANDS
    small_event_cap: int = 30
    """An event is small when it has at most this many registered (non-reverted) attendees."""
    tie_threshold: int = 2
    """A loose tie: a cross-generation pair met at this many distinct small events or more."""
    name: str = DEFINITIONS_VERSION

    def __post_init__(self) -> None:
        if self.small_event_cap < 2:
            raise InvalidValue("small_event_cap must be at least 2")
        if self.tie_threshold < 1:
            raise InvalidValue("tie_threshold must be at least 1")

    @property
    def version(self) -> str:
        """Names the definitions and every parameter that differs from nothing: reproducible."""
        return (
            f"{self.name} ({self.bands.version}; small ≤ {self.small_event_cap}; "
            f"ties ≥ {self.tie_threshold})"
        )


DEFAULT_PARAMETERS = Parameters()


def load_parameters(path: Path) -> Parameters:
    """Parameters from a JSON file; any key left out keeps its default.

    ``{"name": "what-if-20", "small_event_cap": 20, "tie_threshold": 3,
    "bands": {"version": "bands-alt", "bands": [{"id": "child", "name_ja": "子ども",
    "name_en": "Children", "min_age": 0, "max_age": 17, "group": "child"}, ...]}}``
    """
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidValue(f"cannot read definitions from {path}: {error}") from error
    bands = DEFAULT_BANDS
    if "bands" in data:
        spec = data["bands"]
        try:
            bands = BandScheme(
                version=str(spec["version"]),
                bands=tuple(
                    Band(
                        id=str(b["id"]),
                        name_ja=str(b.get("name_ja", b["id"])),
                        name_en=str(b.get("name_en", b["id"])),
                        min_age=int(b["min_age"]),
                        max_age=None if b.get("max_age") is None else int(b["max_age"]),
                        group=CoarseGroup(b["group"]),
                    )
                    for b in spec["bands"]
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidValue(f"bad bands in {path}: {error}") from error
    return Parameters(
        bands=bands,
        small_event_cap=int(data.get("small_event_cap", DEFAULT_PARAMETERS.small_event_cap)),
        tie_threshold=int(data.get("tie_threshold", DEFAULT_PARAMETERS.tie_threshold)),
        name=str(data.get("name", "custom")),
    )
