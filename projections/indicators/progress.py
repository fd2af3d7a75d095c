"""Progress toward the plan: baseline (初期値), results (実績) with grades, target (目標値)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

from domain.errors import InvalidValue
from domain.fiscal import fiscal_year_label
from projections.indicators.definitions import all_indicators


@dataclass(frozen=True)
class TargetSpec:
    target: float | None = None
    target_increase_percent: float | None = None
    baseline_fiscal_year: int | None = None
    baseline_value: float | None = None


@dataclass(frozen=True)
class Targets:
    plan: str
    target_fiscal_year: int
    indicators: dict[str, TargetSpec]


def load_targets(path: Path | None = None) -> Targets:
    """The targets reference file: the packaged one, or another given by path."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath("targets.json").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        data: dict[str, Any] = json.loads(text)
        known = {indicator.id for indicator in all_indicators()}
        specs = {}
        for key, spec in data["indicators"].items():
            if key not in known:
                raise InvalidValue(f"unknown indicator {key!r} in targets")
            baseline = spec.get("baseline") or {}
            specs[key] = TargetSpec(
                target=spec.get("target"),
                target_increase_percent=spec.get("target_increase_percent"),
                baseline_fiscal_year=baseline.get("fiscal_year"),
                baseline_value=baseline.get("value"),
            )
        return Targets(str(data["plan"]), int(data["target_fiscal_year"]), specs)
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise InvalidValue(f"cannot read targets from {path or 'targets.json'}: {error}") from error


def grade(value: float, baseline: float | None, target: float | None) -> str:
    """a: target reached; b: improved on the baseline; c: not improved."""
    if target is not None and value >= target:
        return "a"
    if baseline is not None and value > baseline:
        return "b"
    return "c"


def progress(results: dict[int, dict[str, Any]], targets: Targets) -> dict[str, Any]:
    """Per indicator: baseline, each fiscal year's result with its grade, target.

    ``results`` maps fiscal years to the ``indicators`` part of an indicators answer.
    """
    years = sorted(results)
    with_data = [y for y in years if results[y]["held_events"]["value"] > 0]
    answer: dict[str, Any] = {}
    for indicator in all_indicators():
        spec = targets.indicators.get(indicator.id, TargetSpec())
        baseline_year = spec.baseline_fiscal_year
        baseline_value = spec.baseline_value
        if baseline_value is None and with_data:
            baseline_year = baseline_year if baseline_year in results else with_data[0]
            baseline_value = results[baseline_year][indicator.id]["value"]
        target = spec.target
        if (
            target is None
            and spec.target_increase_percent is not None
            and baseline_value is not None
        ):
            # Exact arithmetic: 10 % over 50 is 55, where floats would round it up to 56.
            increase = Fraction(str(spec.target_increase_percent))
            target = math.ceil(Fraction(str(baseline_value)) * (100 + increase) / 100)
        answer[indicator.id] = {
            "name_ja": indicator.name_ja,
            "name_en": indicator.name_en,
            "baseline": None
            if baseline_value is None
            else {"fiscal_year": baseline_year, "value": baseline_value},
            "target": None
            if target is None
            else {"fiscal_year": targets.target_fiscal_year, "value": target},
            "results": [
                {
                    "fiscal_year": year,
                    "label": fiscal_year_label(year),
                    "value": results[year][indicator.id]["value"],
                    "grade": grade(results[year][indicator.id]["value"], baseline_value, target),
                }
                for year in years
            ],
        }
    return {
        "plan": targets.plan,
        "target_fiscal_year": targets.target_fiscal_year,
        "indicators": answer,
    }
