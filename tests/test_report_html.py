"""The HTML report: self-contained, escaped, with the chart and drill-down, checked in a real headless Chromium.

Chromium comes from Debian's ``chromium`` package (CI: ``apt-get install -y chromium``). Without it this test
fails rather than skips: a report nobody opened in a browser is not tested.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_report_fixtures import SCRIPT_OUTPUT, TinyProject, replay, tiny_project, trial, write_run

from harness.report.chart import nice_ticks
from harness.report.render import render_run

CHROMIUM = Path("/usr/bin/chromium")
SVG = "{http://www.w3.org/2000/svg}"
WIDTH, HEIGHT = 1400, 2000


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project: TinyProject = tiny_project(tmp_path_factory.mktemp("tiny-html"))
    return replay(project, "for-html")


def _scripts(html: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", html, flags=re.S)


def test_outputs_with_markup_are_text_and_only_our_hashed_scripts_run(replayed: Path) -> None:
    html = render_run(replayed, "html")
    scripts = _scripts(html)
    assert len(scripts) == 2 and html.count("<script") == 2
    assert "alert('owned')" not in "".join(scripts)
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; material" in html
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy is not None and "default-src 'none'" in policy.group(1)
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
        assert f"'sha256-{digest}'" in policy.group(1)
    # Nothing is fetched: no stylesheet links, no src or href to another place.
    assert "<link" not in html and not re.search(r'(src|href)="(?!#)', html)


def test_drill_down_has_inputs_outputs_and_grader_reasons_per_case(replayed: Path) -> None:
    html = render_run(replayed, "html")
    cases = re.findall(r'<details class="case" data-disagree="(\d)" data-failing="(\d)">\s*<summary><span '
                       r'class="case-id">([^<]+)</span>', html)  # fmt: skip
    assert [c[2] for c in cases] == ["apple", "banana", "carrot", "dice", "glass", "potato", "stone"]
    flags = {c[2]: c[:2] for c in cases}
    assert flags["apple"] == ("0", "0") and flags["stone"] == ("1", "1") and flags["potato"] == ("0", "1")
    stone = html[html.index('class="case-id">stone<'):]
    stone = stone[: stone.index("</details>")]
    assert "Input · prompt v1" in stone and "Input · prompt v2" in stone and "item: stone" in stone
    assert stone.count("<tr><td>fault-server") == 8  # 4 variants × 2 repeats
    assert "found &#39;rock&#39;" in stone and "pebble" in stone


def test_chart_marks_front_grey_and_dominated_points(tmp_path: Path) -> None:
    # Same quality on the same cases (enough of them to show non-inferiority within 5 points); "pricey"
    # costs three times as much: significantly dominated.
    quality = [True] * 90 + [False] * 30
    cheap = [trial(f"c{i:02d}", q, prompt="cheap", cost=0.001 + 0.0001 * (i % 7)) for i, q in enumerate(quality)]
    pricey = [trial(f"c{i:02d}", q, prompt="pricey", cost=0.003 + 0.0001 * (i % 5)) for i, q in enumerate(quality)]
    html = render_run(write_run(tmp_path, cheap + pricey), "html")
    svg_text = html[html.index("<svg"):html.index("</svg>") + len("</svg>")]
    svg = ET.fromstring(svg_text)
    groups = {g.get("class"): g for g in svg.iter(f"{SVG}g") if (g.get("class") or "").startswith("point ")}
    assert set(groups) == {"point point-front", "point point-dominated"}
    assert groups["point point-dominated"].find(f"{SVG}circle").get("fill") == "#ffffff"
    assert "pricey" in groups["point point-dominated"].find(f"{SVG}title").text
    assert "significantly dominated by m · cheap · T=0" in html


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    assert nice_ticks(1.0) == [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
    ticks = nice_ticks(3.3e-6)
    assert ticks[0] == 0.0 and ticks[-1] >= 3.3e-6 and len(ticks) <= 7


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_opens_in_headless_chromium_without_errors_and_shows_table_and_chart(
    replayed: Path, tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), "headless Chromium is needed: apt-get install -y chromium"
    page = tmp_path / "report.html"
    page.write_text(render_run(replayed, "html"), encoding="utf-8")
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0", "--dump-dom",
         f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri()],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    dom = proc.stdout
    # The page's first script records errors and blocked loads on <html data-errors>; the last sets data-ready.
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None and 'data-ready="1"' in root.group(0), root
    assert "data-errors" not in root.group(0), root.group(0)
    assert 'id="case-count" class="note">7 of 7 cases shown' in dom  # the filter script ran
    assert dom.count("<table") >= 5 and "<svg" in dom and dom.count("<circle") == 4
    assert "&lt;script&gt;alert('owned')&lt;/script&gt; material" in dom
    assert SCRIPT_OUTPUT not in dom
    assert _png_size(shot) == (WIDTH, HEIGHT)
    # A blank page of this size compresses to ~13 kB and a few lines of text to ~16 kB; tables and a chart
    # with coloured markers give several hundred kB.
    assert shot.stat().st_size > 100_000, shot.stat().st_size


def test_every_trial_appears_once_in_the_drill_down(tmp_path: Path) -> None:
    results = [trial(f"c{i}", i % 2 == 0, repeat=r, output=f"out-{i}-{r}") for i in range(3) for r in range(2)]
    html = render_run(write_run(tmp_path, results), "html")
    for i in range(3):
        for r in range(2):
            assert html.count(f"out-{i}-{r}") == 1
