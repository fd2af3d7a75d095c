"""The HTML report: self-contained, complete, and really rendered by a browser.

The demo data set is loaded once into a SQLite file (the report reads the same read model on
PostgreSQL; loading the demo twice is not worth the time). The browser test needs Debian's
``chromium``; without it the test skips, unless TSUNAGARI_REQUIRE_CHROMIUM=1 (CI) makes it fail.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.districts import DEFAULT_DISTRICTS
from domain.events import JST
from domain.generations import COARSE_GROUP_NAMES
from infrastructure.settings import Settings
from interfaces import cli as cli_module
from interfaces.bootstrap import Services, build_services
from interfaces.demo import DemoPlan, load_demo
from projections.indicators.definitions import all_indicators
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS
from projections.indicators.report import (
    DistrictAnswer,
    ReportData,
    format_number,
    render_report,
)
from tests.support import Clock

REQUIRE_CHROMIUM = os.environ.get("TSUNAGARI_REQUIRE_CHROMIUM") == "1"
PLAN = DemoPlan(residents=120, fiscal_years=2, seed=2026)
FISCAL_YEAR = 2026
WIDTH, HEIGHT = 1280, 2000


@dataclass
class Demo:
    services: Services
    settings: Settings
    data: ReportData


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo data set (2025年度 and 2026年度 to 28 November), projected."""
    directory = tmp_path_factory.mktemp("report")
    settings = Settings(database_url=f"sqlite:///{directory}/tsunagari.sqlite3")
    services = build_services(settings, clock=Clock())
    try:
        load_demo(services.app, PLAN, today=services.app.today())
        follower = services.follower()
        follower.start()
        try:
            head = services.app.recorder.max_notification_id() or 0
            assert follower.wait_for(head, timeout=120), "projections did not catch up"
        finally:
            follower.stop()
        read_model = services.indicators
        data = ReportData(
            answer=read_model.indicators(FISCAL_YEAR, Scope()),
            progress=read_model.progress(services.targets),
            districts=[
                DistrictAnswer(
                    d.id, d.name_ja, d.name_en, read_model.indicators(FISCAL_YEAR, Scope(d.id))
                )
                for d in DEFAULT_DISTRICTS.districts
            ],
            generated_at=services.app.clock(),
        )
        yield Demo(services, settings, data)
    finally:
        services.close()


@pytest.fixture(scope="module")
def report_file(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report as `tsunagari report --fiscal-year 2026 --out FILE` writes it."""
    out = tmp_path_factory.mktemp("html") / "report.html"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TSUNAGARI_DATABASE_URL", demo.settings.database_url)
        patch.delenv("TSUNAGARI_DATABASE_SCHEMA", raising=False)
        patch.setattr(cli_module, "configure_logging", lambda settings: None)
        result = CliRunner().invoke(
            cli_module.cli, ["report", "--fiscal-year", str(FISCAL_YEAR), "--out", str(out)]
        )
    assert result.exit_code == 0, result.output
    return out


def headline(html: str, indicator_id: str) -> str:
    """The text of an indicator's result cell in the summary table."""
    match = re.search(rf'data-indicator="{indicator_id}"[^>]*>([^<]*)<', html)
    assert match is not None, f"no result cell for {indicator_id}"
    return unescape(match.group(1)).strip()


def test_the_report_is_self_contained_and_complete(demo: Demo, report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    assert "http://" not in html
    assert "https://" not in html
    for outside in ("<script", "<link", "<img", "<iframe", "src=", "url(", "@import"):
        assert outside not in html, outside
    answer = demo.data.answer
    assert answer["indicators"]["total_attendances"]["value"] > 0
    for indicator in all_indicators():
        assert indicator.name_ja in html
        assert indicator.name_en in html
        assert indicator.definition_ja in html
        assert f'id="trend-{indicator.id}"' in html
        value = answer["indicators"][indicator.id]["value"]
        assert headline(html, indicator.id) == format_number(value)
    assert html.count('<svg class="trend"') == len(all_indicators())
    assert html.count('<svg class="mix"') == 1
    for district in DEFAULT_DISTRICTS.districts:
        assert district.name_ja in html
        assert district.name_en in html
    for name_ja, name_en in COARSE_GROUP_NAMES.values():
        assert name_ja in html
        assert name_en in html
    assert "2026(令和8)年度" in html
    assert answer["definitions"] in html
    progress = demo.data.progress["indicators"]["loose_ties"]
    assert format_number(progress["target"]["value"]) in html
    assert format_number(progress["baseline"]["value"]) in html


def test_the_cli_report_shows_the_read_models_numbers(demo: Demo, report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    rendered = render_report(demo.data)
    for indicator in all_indicators():
        assert headline(html, indicator.id) == headline(rendered, indicator.id)


def test_a_year_without_data_or_targets_still_renders_and_escapes_text() -> None:
    empty_indicators = {
        indicator.id: {"value": 0, "name_ja": indicator.name_ja, "name_en": indicator.name_en}
        for indicator in all_indicators()
    }
    empty_indicators["total_attendances"].update({"by_group": {}, "registered": 0})
    empty_indicators["multigenerational_events"]["share"] = 0.0
    answer: dict[str, Any] = {
        "fiscal_year": 2018,
        "label": "2018年度",
        "as_of": None,
        "definitions": "what-if <b>& co</b>",
        "scope": {"district": None, "program_id": None, "policy": None},
        "position": None,
        "indicators": empty_indicators,
    }
    progress = {
        "plan": "<script>alert(1)</script>",
        "target_fiscal_year": 2026,
        "indicators": {
            indicator.id: {"baseline": None, "target": None, "results": []}
            for indicator in all_indicators()
        },
    }
    html = render_report(
        ReportData(answer, progress, [DistrictAnswer("suge", "菅地区", "Suge", answer)])
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "what-if &lt;b&gt;&amp; co&lt;/b&gt;" in html
    assert "データなし No data" in html
    assert headline(html, "loose_ties") == "0"


def test_the_target_year_gets_a_column_of_its_own_when_it_is_still_ahead(demo: Demo) -> None:
    progress = dict(demo.data.progress)
    progress["target_fiscal_year"] = 2028
    progress["indicators"] = {
        key: {**spec, "target": {"fiscal_year": 2028, "value": 999}}
        for key, spec in demo.data.progress["indicators"].items()
    }
    html = render_report(ReportData(demo.data.answer, progress, demo.data.districts))
    assert html.count('class="target-bar"') == len(all_indicators())
    assert ">2028</text>" in html


# In a real browser ---------------------------------------------------------------------------


def chromium() -> str:
    found = os.environ.get("TSUNAGARI_CHROMIUM") or shutil.which("chromium")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if REQUIRE_CHROMIUM:
            pytest.fail(f"{reason}; TSUNAGARI_REQUIRE_CHROMIUM=1 requires it")
        pytest.skip(reason)
    return found


def run_chromium(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@dataclass
class Png:
    width: int
    height: int
    channels: int
    rows: list[bytes]


def decode_png(data: bytes) -> Png:
    """A non-interlaced 8-bit RGB or RGBA PNG, with the standard library only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, bytearray(), b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8, depth
    assert colour in (2, 6), colour
    assert interlace == 0, interlace
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    offset = 0
    for _ in range(height):
        filter_type, line = raw[offset], bytearray(raw[offset + 1 : offset + 1 + stride])
        offset += 1 + stride
        if filter_type == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif filter_type == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif filter_type == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif filter_type == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Png(width, height, channels, rows)


def test_chromium_renders_the_report_with_its_numbers(
    demo: Demo, report_file: Path, tmp_path: Path
) -> None:
    binary = chromium()
    screenshot = tmp_path / "report.png"
    url = report_file.resolve().as_uri()
    started = time.monotonic()
    run_chromium(
        binary,
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        f"--window-size={WIDTH},{HEIGHT}",
        url,
    )
    assert screenshot.exists(), "chromium wrote no screenshot"
    assert screenshot.stat().st_size > 20_000, "the screenshot is suspiciously small"
    image = decode_png(screenshot.read_bytes())
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    pixels: set[bytes] = set()
    inked = 0
    sampled = 0
    for row in image.rows[::8]:
        for x in range(0, image.width * image.channels, 8 * image.channels):
            pixel = row[x : x + 3]
            pixels.add(pixel)
            sampled += 1
            if sum(pixel) < 600:  # clearly darker than the page and its margins
                inked += 1
    assert len(pixels) > 50, f"only {len(pixels)} colours: the page did not render"
    assert inked / sampled > 0.02, f"only {inked / sampled:.1%} of the page has ink"

    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url).stdout
    indicators = demo.data.answer["indicators"]
    for indicator_id in ("total_attendances", "loose_ties"):
        expected = format_number(indicators[indicator_id]["value"])
        assert headline(dom, indicator_id) == expected
        assert re.search(rf'data-highlight="{indicator_id}"[^>]*>{re.escape(expected)}<', dom)
    assert "延べ人数" in dom
    assert "ゆるやかなつながり" in dom
    assert dom.count("<svg") == len(all_indicators()) + 1
    assert time.monotonic() - started < 300


def test_generated_at_marks_a_fiscal_year_in_progress(demo: Demo) -> None:
    during = ReportData(
        demo.data.answer,
        demo.data.progress,
        demo.data.districts,
        generated_at=datetime(2026, 11, 28, 12, 0, tzinfo=JST),
    )
    assert "年度途中" in render_report(during)
    after = ReportData(
        demo.data.answer,
        demo.data.progress,
        demo.data.districts,
        generated_at=datetime(2027, 5, 1, 9, 0, tzinfo=JST),
    )
    html = render_report(after)
    assert "年度途中" not in html
    assert "2027-05-01 09:00 JST" in html


def test_the_indicator_docs_quote_every_definition_and_the_version() -> None:
    docs = (Path(__file__).parents[2] / "projections" / "indicators" / "README.md").read_text(
        encoding="utf-8"
    )
    assert DEFAULT_PARAMETERS.version in docs
    for indicator in all_indicators():
        assert f"`{indicator.id}`" in docs
        assert indicator.definition_ja in docs
        assert indicator.definition_en in docs
