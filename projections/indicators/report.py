"""The indicators report: one self-contained HTML file, in Japanese with English subtitles.

Everything is inline (CSS, charts drawn here as SVG): the file opens offline, prints on A4 and
can be mailed as it is. It references no URL at all.

Pure: :func:`render_report` turns answers (the dicts ``IndicatorReadModel.indicators`` returns),
the progress answer (``IndicatorReadModel.progress``) and one answer per district into a string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from domain.events import JST
from domain.fiscal import fiscal_year_bounds, fiscal_year_label
from domain.generations import COARSE_GROUP_NAMES, CoarseGroup
from projections.indicators.definitions import all_indicators
from projections.indicators.export import ordered_ids
from projections.indicators.parameters import DEFAULT_PARAMETERS

GROUP_COLOURS = {
    CoarseGroup.CHILD: "#e08e0b",
    CoarseGroup.WORKING: "#2f6db5",
    CoarseGroup.SENIOR: "#2a9d73",
}
GRADES: dict[str, tuple[str, str]] = {
    "a": ("目標達成", "Target reached"),
    "b": ("改善", "Improved on the baseline"),
    "c": ("未改善", "Not improved"),
}
HIGHLIGHTS = (
    "total_attendances",
    "unique_participants",
    "multigenerational_events",
    "loose_ties",
)
"""The indicators shown large at the top of the report."""

EXTRA_LABELS: dict[str, tuple[str, str]] = {
    "registered": ("登録参加者", "registered"),
    "walk_ins": ("飛び入り", "walk-ins"),
    "share": ("割合", "share"),
    "held_events": ("開催回数", "held"),
    "threshold": ("基準", "threshold"),
    "active_organizations": ("活動団体", "active organisations"),
}


@dataclass(frozen=True)
class DistrictAnswer:
    """One district's indicators answer, with the district's names."""

    district_id: str
    name_ja: str
    name_en: str
    answer: Mapping[str, Any]


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows."""

    answer: Mapping[str, Any]
    """The indicators of the fiscal year, ward-wide."""
    progress: Mapping[str, Any]
    """Baseline, yearly results with grades and targets, ward-wide."""
    districts: Sequence[DistrictAnswer]
    """The same fiscal year's indicators per district (the event's district)."""
    generated_at: datetime | None = None


# Formatting -----------------------------------------------------------------------------


def format_number(value: object) -> str:
    """A number as the report prints it: ``1,234``; fractions with one decimal; None as ―."""
    if value is None:
        return "―"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.1f}"
    return str(value)


def format_percent(share: float) -> str:
    """A share (0.8587) as a percentage (85.9%)."""
    return f"{share * 100:.1f}%"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _compact(value: float) -> str:
    """Axis labels: 1,200 → 1.2k, 25,000 → 25k."""
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return format_number(int(value) if float(value).is_integer() else value)


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above a value (1 for nothing)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return step * magnitude
    return 10.0 * magnitude  # pragma: no cover - the loop ends at 10


def _era_short(fiscal_year: int) -> str:
    """``R8`` for 2026; the Western year alone before 令和."""
    label = fiscal_year_label(fiscal_year)
    if "令和" not in label:
        return ""
    era = label.split("令和", 1)[1].split(")", 1)[0]
    return f"R{1 if era == '元' else era}"


# Pieces of data --------------------------------------------------------------------------


def _progress_of(data: ReportData, indicator_id: str) -> Mapping[str, Any]:
    indicators: Mapping[str, Mapping[str, Any]] = data.progress.get("indicators", {})
    return indicators.get(indicator_id, {})


def _grade_for(progress: Mapping[str, Any], fiscal_year: int) -> str | None:
    for result in progress.get("results", ()):
        if result.get("fiscal_year") == fiscal_year:
            grade = result.get("grade")
            return str(grade) if grade is not None else None
    return None


def _reference(progress: Mapping[str, Any], key: str) -> tuple[float | None, int | None]:
    spec = progress.get(key)
    if not spec:
        return None, None
    return spec.get("value"), spec.get("fiscal_year")


def _details(figures: Mapping[str, Any]) -> list[str]:
    """The extra figures of an indicator, as short phrases."""
    phrases = []
    for key, value in figures.items():
        if key in {"value", "name_ja", "name_en"} or isinstance(value, Mapping):
            continue
        ja, en = EXTRA_LABELS.get(key, (key, key))
        if key == "share" and isinstance(value, int | float):
            text = format_percent(float(value))
        elif key == "threshold":
            text = f"{format_number(value)}回以上"
        else:
            text = format_number(value)
        phrases.append(f'{_e(ja)} {_e(text)} <span class="en">{_e(en)}</span>')
    by_group = figures.get("by_group")
    if isinstance(by_group, Mapping) and by_group:
        parts = [
            f"{_e(COARSE_GROUP_NAMES[group][0])} {_e(format_number(by_group.get(group.value, 0)))}"
            for group in CoarseGroup
        ]
        phrases.append(" · ".join(parts))
    return phrases


def _grade_badge(grade: str | None) -> str:
    if grade is None:
        return '<span class="grade grade-none" title="No result">―</span>'
    ja, en = GRADES.get(grade, (grade, grade))
    return (
        f'<span class="grade grade-{_e(grade)}" title="{_e(en)}">{_e(grade)}</span>'
        f'<span class="grade-text">{_e(ja)}</span>'
    )


# Charts ----------------------------------------------------------------------------------


def trend_svg(
    results: Sequence[Mapping[str, Any]],
    *,
    baseline: float | None,
    target: float | None,
    target_fiscal_year: int | None,
    fiscal_year: int,
    title: str,
) -> str:
    """Yearly results as columns, the baseline and the target as dashed lines."""
    width, height = 232, 150
    left, right, top, bottom = 32, 6, 16, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(r.get("value") or 0) for r in results]
    references = [v for v in (baseline, target) if v is not None]
    y_max = _nice_ceiling(max([*values, *references, 0.0]) * 1.08)

    def y(value: float) -> float:
        return top + plot_h - (value / y_max) * plot_h

    parts = [
        f'<svg class="trend" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" preserveAspectRatio="xMidYMid meet">'
    ]
    for tick in (0.0, y_max / 2, y_max):
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{left - 5}" y="{ty + 3.5:.1f}" text-anchor="end">'
            f"{_e(_compact(tick))}</text>"
        )
    years = [int(result["fiscal_year"]) for result in results]
    ahead = (
        target is not None
        and target_fiscal_year is not None
        and (not years or target_fiscal_year > max(years))
    )
    count = max(len(results) + (1 if ahead else 0), 1)
    slot = plot_w / count
    bar_w = min(44.0, slot * 0.5)
    bars: list[str] = []
    labels: list[str] = []

    def x_label(cx: float, year: int, css: str) -> None:
        labels.append(
            f'<text class="year{css}" x="{cx:.1f}" y="{height - bottom + 13}" '
            f'text-anchor="middle">{year}</text>'
            f'<text class="era" x="{cx:.1f}" y="{height - bottom + 25}" '
            f'text-anchor="middle">{_e(_era_short(year))}</text>'
        )

    for index, (result, value) in enumerate(zip(results, values, strict=True)):
        year = years[index]
        cx = left + slot * (index + 0.5)
        top_y = y(value)
        current = " current" if year == fiscal_year else ""
        bar_h = top + plot_h - top_y
        inside = " inside" if bar_h >= 20 else ""
        label_y = top_y + 13 if inside else top_y - 4
        bars.append(
            f'<rect class="bar{current}" x="{cx - bar_w / 2:.1f}" y="{top_y:.1f}" '
            f'width="{bar_w:.1f}" height="{bar_h:.1f}" rx="2"/>'
        )
        labels.append(
            f'<text class="bar-value{inside}{current}" x="{cx:.1f}" y="{label_y:.1f}" '
            f'text-anchor="middle">{_e(format_number(result.get("value")))}</text>'
        )
        x_label(cx, year, current)
    if ahead and target is not None and target_fiscal_year is not None:
        cx = left + slot * (count - 0.5)
        top_y = y(float(target))
        bars.append(
            f'<rect class="target-bar" x="{cx - bar_w / 2:.1f}" y="{top_y:.1f}" '
            f'width="{bar_w:.1f}" height="{top + plot_h - top_y:.1f}" rx="2"/>'
        )
        labels.append(
            f'<text class="bar-value target-value" x="{cx:.1f}" y="{top_y - 4:.1f}" '
            f'text-anchor="middle">{_e(format_number(target))}</text>'
        )
        x_label(cx, target_fiscal_year, " target-year")
    parts.extend(bars)
    if baseline is not None:
        by = y(float(baseline))
        parts.append(
            f'<line class="baseline" x1="{left}" x2="{width - right}" y1="{by:.1f}" y2="{by:.1f}"/>'
        )
    if target is not None:
        ty = y(float(target))
        parts.append(
            f'<line class="target" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{width - right}" '
        f'y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    parts.extend(labels)
    if not results:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
            'text-anchor="middle">データなし No data</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def generation_mix_svg(rows: Sequence[tuple[str, str, Mapping[str, int]]]) -> str:
    """Stacked horizontal bars: attendances by coarse group, one bar per district.

    ``rows`` are (Japanese name, English name, counts by group value).
    """
    label_w, total_w, bar_h, gap, top = 150, 56, 24, 12, 6
    width = 700
    plot_w = width - label_w - total_w
    height = top + len(rows) * (bar_h + gap) + 4
    totals = [sum(counts.get(g.value, 0) for g in CoarseGroup) for _, _, counts in rows]
    scale = plot_w / max([*totals, 1])
    parts = [
        f'<svg class="mix" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="地区別の世代構成 Generation mix by district">'
    ]
    for index, ((name_ja, name_en, counts), total) in enumerate(zip(rows, totals, strict=True)):
        y0 = top + index * (bar_h + gap)
        parts.append(
            f'<text class="district" x="0" y="{y0 + 11}">{_e(name_ja)}</text>'
            f'<text class="district-en" x="0" y="{y0 + 23}">{_e(name_en)}</text>'
        )
        x = float(label_w)
        for group in CoarseGroup:
            count = counts.get(group.value, 0)
            if count <= 0:
                continue
            w = count * scale
            share = count / total if total else 0.0
            parts.append(
                f'<rect class="segment" x="{x:.1f}" y="{y0}" width="{w:.1f}" height="{bar_h}" '
                f'fill="{GROUP_COLOURS[group]}"><title>{_e(COARSE_GROUP_NAMES[group][0])} '
                f"{_e(format_number(count))} ({_e(format_percent(share))})</title></rect>"
            )
            if w >= 34:
                parts.append(
                    f'<text class="segment-label" x="{x + w / 2:.1f}" y="{y0 + 16}" '
                    f'text-anchor="middle">{_e(format_number(count))}</text>'
                )
            x += w
        if total == 0:
            parts.append(
                f'<rect class="segment-empty" x="{label_w}" y="{y0}" width="{plot_w}" '
                f'height="{bar_h}"/><text class="empty" x="{label_w + 8}" y="{y0 + 16}">'
                "開催なし No held events</text>"
            )
        parts.append(
            f'<text class="total" x="{x + 6:.1f}" y="{y0 + 16}">{_e(format_number(total))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# The document ------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm; }
:root {
  --ink: #1d2733; --muted: #5b6877; --line: #d5dce4; --paper: #ffffff; --wash: #eef2f6;
  --brand: #1f5f8b; --brand-soft: #e6eff6; --target: #c2410c; --baseline: #7b8794;
  --a: #1e8a4c; --b: #c98a06; --c: #9aa5b1;
}
* { box-sizing: border-box; }
html { background: var(--wash); }
body {
  margin: 0; color: var(--ink); font-size: 13.5px; line-height: 1.6;
  font-family: "Noto Sans CJK JP", "Noto Sans JP", "Hiragino Kaku Gothic ProN", "Hiragino Sans",
    "Yu Gothic UI", "Yu Gothic", Meiryo, "IPAexGothic", "IPAGothic", sans-serif;
  -webkit-print-color-adjust: exact; print-color-adjust: exact;
}
main {
  max-width: 210mm; margin: 24px auto; padding: 14mm 13mm 12mm; background: var(--paper);
  box-shadow: 0 1px 4px rgba(16, 32, 48, .12);
}
.en { color: var(--muted); font-size: .82em; font-weight: 400; letter-spacing: .01em; }
h1, h2, h3 { margin: 0; font-weight: 700; line-height: 1.35; }
header.cover { border-bottom: 3px solid var(--brand); padding-bottom: 12px; margin-bottom: 18px; }
.plan { color: var(--brand); font-size: 12px; font-weight: 700; letter-spacing: .04em; }
h1 { font-size: 25px; margin-top: 4px; }
h1 .en { display: block; font-size: 14px; margin-top: 2px; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 10px 0 0; font-size: 12px; }
.meta div { display: flex; gap: 6px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; font-weight: 600; }
.notice {
  margin: 10px 0 0; padding: 6px 10px; border-left: 4px solid var(--b); background: #fdf6e3;
  font-size: 12px;
}
section { margin-top: 22px; }
h2 {
  font-size: 17px; padding: 0 0 5px; margin-bottom: 10px; border-bottom: 1px solid var(--line);
}
h2 .en { margin-left: 8px; }
.lead { margin: -4px 0 10px; color: var(--muted); font-size: 12px; }
.highlights { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px; }
.highlight {
  background: var(--brand-soft); border-radius: 6px; padding: 10px 12px 9px;
  border-top: 4px solid var(--brand);
}
.highlight h3 { font-size: 13px; }
.highlight h3 .en { display: block; font-size: 10.5px; }
.highlight .big {
  font-size: 30px; font-weight: 700; line-height: 1.15; margin: 6px 0 2px; color: var(--brand);
  font-variant-numeric: tabular-nums;
}
.highlight .vs { font-size: 11px; color: var(--muted); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 7px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th {
  font-size: 11.5px; text-align: left; background: #f4f7fa; border-bottom: 2px solid var(--line);
  line-height: 1.3;
}
thead th .en { display: block; font-size: 10px; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.result { font-size: 16px; font-weight: 700; color: var(--brand); }
.name-ja { font-weight: 700; }
.name-en { display: block; color: var(--muted); font-size: 11px; }
.details { font-size: 11px; color: var(--muted); }
.details span.en { font-size: 10px; }
.details div { white-space: nowrap; }
.sub { display: block; font-size: 10.5px; color: var(--muted); font-weight: 400; }
.grade {
  display: inline-block; min-width: 22px; padding: 1px 6px; border-radius: 11px; color: #fff;
  text-align: center; font-weight: 700; font-size: 12px; line-height: 18px;
}
.grade-a { background: var(--a); } .grade-b { background: var(--b); }
.grade-c { background: var(--c); } .grade-none { background: #cfd6de; }
.grade-text { margin-left: 6px; font-size: 11.5px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; font-size: 11.5px; margin-top: 8px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.swatch { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
.line-swatch { width: 22px; height: 0; border-top: 2px dashed; display: inline-block; }
.line-swatch.baseline { border-color: var(--baseline); }
.line-swatch.target { border-color: var(--target); }
.trends { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px 14px; }
figure { margin: 0; break-inside: avoid; }
.trends figure { border: 1px solid var(--line); border-radius: 6px; padding: 8px 8px 6px; }
figcaption { font-size: 12.5px; font-weight: 700; line-height: 1.3; }
figcaption .en { display: block; font-size: 10.5px; }
.refs { font-size: 10.5px; color: var(--muted); line-height: 1.4; }
.refs b { color: var(--ink); font-weight: 600; }
svg { display: block; width: 100%; height: auto; overflow: visible; }
svg text { font-family: inherit; fill: var(--ink); }
svg .grid { stroke: #e7ecf1; stroke-width: 1; }
svg .axis { stroke: #9aa5b1; stroke-width: 1; }
svg .tick { font-size: 9.5px; fill: var(--muted); }
svg .bar { fill: #9fbdd6; }
svg .bar.current { fill: var(--brand); }
svg .bar-value {
  font-size: 11px; font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 3px;
  stroke-linejoin: round;
}
svg .bar-value.inside { stroke: none; fill: #163d5a; }
svg .bar-value.inside.current { fill: #fff; }
svg .year { font-size: 10.5px; fill: var(--muted); }
svg .year.current { fill: var(--ink); font-weight: 700; }
svg .era { font-size: 9px; fill: var(--muted); }
svg .target-bar { fill: #fbe9e1; stroke: var(--target); stroke-width: 1; stroke-dasharray: 3 2; }
svg .target-value { fill: var(--target); }
svg .year.target-year { fill: var(--target); font-weight: 700; }
svg .baseline { stroke: var(--baseline); stroke-width: 1.5; stroke-dasharray: 4 3; }
svg .target { stroke: var(--target); stroke-width: 1.5; stroke-dasharray: 6 3; }
svg .empty { font-size: 11px; fill: var(--muted); }
svg .district { font-size: 13px; font-weight: 700; }
svg .district-en { font-size: 10px; fill: var(--muted); }
svg .segment-label { font-size: 11px; font-weight: 700; fill: #fff; }
svg .segment-empty { fill: #f1f4f7; }
svg .total { font-size: 12px; font-weight: 700; }
.mix-table { margin-top: 12px; }
.mix-table .pct {
  display: inline-block; min-width: 4.2em; color: var(--muted); font-size: 11px;
  font-weight: 400;
}
.definitions dl { margin: 0; }
.definitions dt { font-weight: 700; margin-top: 10px; }
.definitions dt code { font-weight: 400; color: var(--muted); font-size: 11px; margin-left: 6px; }
.definitions dd { margin: 2px 0 0 0; }
.definitions dd.en { font-size: 11.5px; }
.rules { margin: 6px 0 0; padding-left: 1.3em; font-size: 12.5px; }
.rules li { margin: 2px 0; }
code { font-family: "Noto Sans Mono CJK JP", Menlo, Consolas, monospace; font-size: .92em; }
.version {
  display: inline-block; background: var(--wash); border-radius: 4px; padding: 1px 8px;
  font-family: "Noto Sans Mono CJK JP", Menlo, Consolas, monospace; font-size: 12px;
}
footer {
  margin-top: 26px; padding-top: 8px; border-top: 1px solid var(--line); color: var(--muted);
  font-size: 11px; display: flex; justify-content: space-between; gap: 12px;
}
@media print {
  html { background: none; }
  body { font-size: 12.5px; }
  main { margin: 0; padding: 0; max-width: none; box-shadow: none; }
  section { margin-top: 14px; }
  section.page { break-before: page; }
  #generations { break-inside: avoid; }
  header.cover { margin-bottom: 10px; }
  th, td { padding: 4px 6px; }
  tr, .highlight, .definitions dt, .definitions dd { break-inside: avoid; }
  .definitions dt { break-after: avoid; }
}
@media (max-width: 720px) {
  .highlights { grid-template-columns: repeat(2, 1fr); }
  .trends { grid-template-columns: repeat(2, 1fr); }
}
"""


def _header(data: ReportData) -> str:
    answer = data.answer
    fiscal_year = int(answer["fiscal_year"])
    label = str(answer.get("label") or fiscal_year_label(fiscal_year))
    plan = str(data.progress.get("plan") or "多世代交流でつながる地域づくり")
    meta = [
        ("年度 Fiscal year", f"{label} / FY{fiscal_year}"),
        ("範囲 Scope", "多摩区全体 Whole ward"),
        ("定義 Definitions", str(answer.get("definitions", ""))),
    ]
    if answer.get("position") is not None:
        meta.append(("ログ位置 Log position", format_number(answer["position"])))
    if data.generated_at is not None:
        meta.append(("作成 Generated", f"{data.generated_at.astimezone(JST):%Y-%m-%d %H:%M} JST"))
    items = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in meta)
    notice = ""
    if data.generated_at is not None:
        first, last = fiscal_year_bounds(fiscal_year)
        today = data.generated_at.astimezone(JST).date()
        if first <= today <= last:
            notice = (
                f'<p class="notice">{_e(label)}は年度途中です。'
                f"{today.year}年{today.month}月{today.day}日時点の集計で、評価は暫定です。"
                f'<span class="en"> The fiscal year is in progress: figures to {today:%Y-%m-%d}, '
                "grades are provisional.</span></p>"
            )
    return (
        '<header class="cover">'
        f'<div class="plan">{_e(plan)}</div>'
        f"<h1>{_e(label)} 成果指標レポート"
        f'<span class="en">Outcome indicators report, FY{fiscal_year} — Tama Ward, '
        "community building through multi-generational exchange</span></h1>"
        f'<dl class="meta">{items}</dl>{notice}</header>'
    )


def _highlights(data: ReportData) -> str:
    indicators: Mapping[str, Mapping[str, Any]] = data.answer["indicators"]
    fiscal_year = int(data.answer["fiscal_year"])
    cards = []
    for indicator_id in HIGHLIGHTS:
        figures = indicators.get(indicator_id)
        if figures is None:
            continue
        progress = _progress_of(data, indicator_id)
        target, target_year = _reference(progress, "target")
        vs = "目標値なし No target"
        if target is not None:
            vs = f"目標値 {format_number(target)}（{target_year}年度）"
        grade = _grade_for(progress, fiscal_year)
        cards.append(
            '<div class="highlight">'
            f'<h3>{_e(figures.get("name_ja"))}<span class="en">{_e(figures.get("name_en"))}</span>'
            "</h3>"
            f'<div class="big" data-highlight="{_e(indicator_id)}">'
            f"{_e(format_number(figures.get('value')))}</div>"
            f'<div class="vs">{_e(vs)}</div>'
            f'<div class="vs">{_grade_badge(grade)}</div></div>'
        )
    return f'<div class="highlights">{"".join(cards)}</div>'


def _summary_table(data: ReportData) -> str:
    fiscal_year = int(data.answer["fiscal_year"])
    indicators: Mapping[str, Mapping[str, Any]] = data.answer["indicators"]
    rows = []
    for indicator_id in ordered_ids(indicators):
        figures = indicators[indicator_id]
        progress = _progress_of(data, indicator_id)
        baseline, baseline_year = _reference(progress, "baseline")
        target, target_year = _reference(progress, "target")
        value = figures.get("value")
        rate = "―"
        if target and isinstance(value, int | float):
            rate = format_percent(float(value) / float(target))
        details = "".join(f"<div>{phrase}</div>" for phrase in _details(figures))
        rows.append(
            f'<tr id="row-{_e(indicator_id)}">'
            f'<td><span class="name-ja">{_e(figures.get("name_ja"))}</span>'
            f'<span class="name-en">{_e(figures.get("name_en"))}</span></td>'
            f'<td class="num result" data-indicator="{_e(indicator_id)}">'
            f"{_e(format_number(value))}</td>"
            f'<td class="details">{details}</td>'
            f'<td class="num">{_e(format_number(baseline))}'
            f'<span class="sub">{_e(f"{baseline_year}年度" if baseline_year else "")}</span></td>'
            f'<td class="num">{_e(format_number(target))}'
            f'<span class="sub">{_e(f"{target_year}年度" if target_year else "")}</span></td>'
            f'<td class="num">{_e(rate)}</td>'
            f"<td>{_grade_badge(_grade_for(progress, fiscal_year))}</td></tr>"
        )
    label = _e(data.answer.get("label") or fiscal_year)
    legend = "".join(
        f'<span><span class="grade grade-{g}">{g}</span>{_e(ja)} <span class="en">{_e(en)}</span>'
        "</span>"
        for g, (ja, en) in GRADES.items()
    )
    return (
        '<table class="summary"><thead><tr>'
        '<th>指標<span class="en">Indicator</span></th>'
        f'<th class="num">実績<span class="en">{label}</span></th>'
        '<th>内訳<span class="en">Details</span></th>'
        '<th class="num">初期値<span class="en">Baseline</span></th>'
        '<th class="num">目標値<span class="en">Target</span></th>'
        '<th class="num">達成率<span class="en">Of target</span></th>'
        '<th>評価<span class="en">Grade</span></th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div class="legend">{legend}</div>'
    )


def _trends(data: ReportData) -> str:
    fiscal_year = int(data.answer["fiscal_year"])
    target_year = data.progress.get("target_fiscal_year")
    figures = []
    for indicator in all_indicators():
        progress = _progress_of(data, indicator.id)
        baseline, baseline_year = _reference(progress, "baseline")
        target, target_fy = _reference(progress, "target")
        svg = trend_svg(
            progress.get("results", ()),
            baseline=baseline,
            target=target,
            target_fiscal_year=target_fy if target_fy is not None else target_year,
            fiscal_year=fiscal_year,
            title=f"{indicator.name_ja} {indicator.name_en}",
        )
        refs = [
            f'<div>{ja} <span class="en">{en}</span> <b>{_e(format_number(value))}</b>'
            f"（{_e(year)}年度）</div>"
            for ja, en, value, year in (
                ("初期値", "Baseline", baseline, baseline_year),
                ("目標値", "Target", target, target_fy),
            )
            if value is not None
        ]
        figures.append(
            f'<figure id="trend-{_e(indicator.id)}"><figcaption>{_e(indicator.name_ja)}'
            f'<span class="en">{_e(indicator.name_en)}</span></figcaption>{svg}'
            f'<div class="refs">{"".join(refs) or "目標値なし No target"}</div></figure>'
        )
    legend = (
        '<div class="legend">'
        '<span><span class="swatch" style="background:#1f5f8b"></span>'
        f'{_e(fiscal_year_label(fiscal_year))}の実績 <span class="en">Result</span></span>'
        '<span><span class="swatch" style="background:#9fbdd6"></span>'
        'その他の年度 <span class="en">Other years</span></span>'
        '<span><span class="line-swatch baseline"></span>初期値 <span class="en">Baseline</span>'
        "</span>"
        '<span><span class="line-swatch target"></span>目標値 <span class="en">Target</span>'
        "</span></div>"
    )
    return f'<div class="trends">{"".join(figures)}</div>{legend}'


def _generation_mix(data: ReportData) -> str:
    rows: list[tuple[str, str, Mapping[str, int]]] = []
    table_rows = []
    total_counts: dict[str, int] = {}
    for district in data.districts:
        indicators: Mapping[str, Mapping[str, Any]] = district.answer["indicators"]
        total_attendances = indicators.get("total_attendances", {})
        by_group: Mapping[str, int] = total_attendances.get("by_group", {})
        rows.append((district.name_ja, district.name_en, by_group))
        multi = indicators.get("multigenerational_events", {})
        table_rows.append(
            _mix_row(district.name_ja, district.name_en, by_group, multi.get("share"))
        )
        for key, count in by_group.items():
            total_counts[key] = total_counts.get(key, 0) + int(count)
    ward = data.answer["indicators"]
    ward_by_group = ward.get("total_attendances", {}).get("by_group", total_counts)
    ward_share = ward.get("multigenerational_events", {}).get("share")
    table_rows.append(
        _mix_row("多摩区全体", "Whole ward", ward_by_group, ward_share, css="total-row")
    )
    legend = "".join(
        f'<span><span class="swatch" style="background:{GROUP_COLOURS[group]}"></span>'
        f'{_e(COARSE_GROUP_NAMES[group][0])} <span class="en">{_e(COARSE_GROUP_NAMES[group][1])}'
        "</span></span>"
        for group in CoarseGroup
    )
    heads = "".join(
        f'<th class="num">{_e(COARSE_GROUP_NAMES[g][0])}'
        f'<span class="en">{_e(COARSE_GROUP_NAMES[g][1])}</span></th>'
        for g in CoarseGroup
    )
    return (
        f"<figure>{generation_mix_svg(rows)}</figure>"
        f'<div class="legend">{legend}</div>'
        '<table class="mix-table"><thead><tr><th>地区<span class="en">District</span></th>'
        f"{heads}"
        '<th class="num">延べ人数<span class="en">Total attendances</span></th>'
        '<th class="num">多世代交流の回の割合<span class="en">Multi-generational share</span>'
        "</th></tr></thead>"
        f"<tbody>{''.join(table_rows)}</tbody></table>"
    )


def _mix_row(
    name_ja: str,
    name_en: str,
    by_group: Mapping[str, int],
    share: object,
    *,
    css: str = "",
) -> str:
    total = sum(int(by_group.get(g.value, 0)) for g in CoarseGroup)
    cells = []
    for group in CoarseGroup:
        count = int(by_group.get(group.value, 0))
        pct = format_percent(count / total) if total else ""
        cells.append(
            f'<td class="num">{_e(format_number(count))} <span class="pct">{_e(pct)}</span></td>'
        )
    share_text = format_percent(float(share)) if isinstance(share, int | float) else "―"
    weight = ' style="font-weight:700"' if css else ""
    return (
        f'<tr class="{css}"{weight}><td><span class="name-ja">{_e(name_ja)}</span>'
        f'<span class="name-en">{_e(name_en)}</span></td>{"".join(cells)}'
        f'<td class="num">{_e(format_number(total))}</td>'
        f'<td class="num">{_e(share_text)}</td></tr>'
    )


def _definitions(data: ReportData) -> str:
    defaults = DEFAULT_PARAMETERS
    rules = [
        (
            "年度は4月1日から翌年3月31日まで（2026年度＝令和8年度）。回は開催日の年度に数えます。",
            "Fiscal years run from 1 April to 31 March; an event counts in the year of its date.",
        ),
        (
            "開催された回：中止されておらず、取消されていない参加（受付または飛び入り）が1人以上ある回。",
            "A held event is not cancelled and has at least one counted check-in or walk-in.",
        ),
        (
            "取消された受付・飛び入り集計は数えません。",
            "Reverted check-ins and walk-in tallies do not count.",
        ),
        (
            "世代は各回の開催日時点の年齢（開催年－生まれ年）で決めます。生まれ年のない人は登録時の世代。",
            "The band is the one at the event's date (event year − birth year); people "
            "registered with a band only keep that band.",
        ),
        (
            "飛び入り参加者は人数だけを世代別に数え、人を特定する指標には含めません。",
            "Walk-ins are counted by band only; they are not part of person-based indicators.",
        ),
        (
            f"小規模な回：登録参加者が{defaults.small_event_cap}人以下の回。"
            f"ゆるやかなつながり：{defaults.tie_threshold}回以上の異なる小規模な回での同席。",
            f"Small event: at most {defaults.small_event_cap} registered attendees; loose tie: "
            f"met at {defaults.tie_threshold} or more distinct small events.",
        ),
        (
            "評価：a＝目標値に到達、b＝初期値より改善、c＝改善なし。",
            "Grade: a = target reached, b = improved on the baseline, c = not improved.",
        ),
    ]
    rule_items = "".join(f'<li>{_e(ja)} <span class="en">{_e(en)}</span></li>' for ja, en in rules)
    entries = "".join(
        f'<dt>{_e(indicator.name_ja)} <span class="en">{_e(indicator.name_en)}</span>'
        f"<code>{_e(indicator.id)}</code></dt>"
        f"<dd>{_e(indicator.definition_ja)}</dd>"
        f'<dd class="en">{_e(indicator.definition_en)}</dd>'
        for indicator in all_indicators()
    )
    version = _e(data.answer.get("definitions", ""))
    return (
        f'<p>定義の版 <span class="en">Definitions version</span> '
        f'<span class="version">{version}</span></p>'
        f'<ul class="rules">{rule_items}</ul><dl>{entries}</dl>'
    )


def render_report(data: ReportData) -> str:
    """The whole report as one HTML document."""
    answer = data.answer
    fiscal_year = int(answer["fiscal_year"])
    label = str(answer.get("label") or fiscal_year_label(fiscal_year))
    generated = ""
    if data.generated_at is not None:
        generated = f"{data.generated_at.astimezone(JST):%Y-%m-%d %H:%M} JST"
    return (
        '<!DOCTYPE html>\n<html lang="ja"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(label)} 成果指標レポート — Tsunagari つながり</title>"
        f"<style>{CSS}</style></head><body><main>"
        f"{_header(data)}"
        '<section id="headline"><h2>主な成果指標<span class="en">Headline indicators</span></h2>'
        f"{_highlights(data)}</section>"
        '<section id="summary"><h2>成果指標の一覧<span class="en">All indicators: result, '
        "baseline, target and grade</span></h2>"
        f"{_summary_table(data)}</section>"
        '<section id="trends" class="page"><h2>年度別の推移<span class="en">Trend by fiscal '
        "year</span></h2>"
        '<p class="lead">各年度の実績と初期値・目標値。<span class="en">Results per fiscal year '
        "against the baseline and the target.</span></p>"
        f"{_trends(data)}</section>"
        '<section id="generations"><h2>地区別の世代構成<span class="en">Generation mix by '
        "district</span></h2>"
        f'<p class="lead">{_e(label)}の延べ人数を世代区分別に（回の開催地区で集計）。'
        '<span class="en">Total attendances by coarse group, per district of the event.</span>'
        "</p>"
        f"{_generation_mix(data)}</section>"
        '<section id="definitions" class="definitions"><h2>指標の定義'
        '<span class="en">Definitions</span></h2>'
        f"{_definitions(data)}</section>"
        f"<footer><span>Tsunagari つながり — {_e(label)}</span>"
        f"<span>{_e(generated)}</span></footer>"
        "</main></body></html>\n"
    )
