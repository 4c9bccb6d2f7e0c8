"""The report renders in a real browser: Debian's chromium, headless, takes a screenshot of the page,
and the plots' lines and markers are on it in their colours.

Needs ``chromium`` on the PATH (``.ci/run`` installs it); without it the test is skipped, and a
skipped test fails CI.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from services.cli.report.page import FEATURE_COLOURS, MARKER_STYLE, render
from tests.harness.report import report_data

WIDTH, HEIGHT = 1280, 2000
V1_BLUE = "#1f77b4"  # matplotlib's first line colour: version 1's error


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def _share_of(image: np.ndarray, colour: str) -> float:
    """Share of pixels within a small distance of ``colour`` (anti-aliasing shifts a few)."""
    distance = np.abs(image.astype(int) - _rgb(colour)).sum(axis=2)
    return float((distance < 30).mean())


def screenshot(page: Path, out: Path) -> np.ndarray:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from matplotlib import image  # noqa: PLC0415

    pixels = image.imread(out)  # floats in 0..1, RGB or RGBA
    return np.asarray(pixels[:, :, :3] * 255, dtype=np.uint8)


@pytest.fixture(scope="module")
def page_html() -> str:
    return render(report_data())


def test_the_report_renders_its_plots_in_headless_chromium(tmp_path: Path, page_html: str) -> None:
    page = tmp_path / "index.html"
    page.write_text(page_html, encoding="utf-8")
    shot = screenshot(page, tmp_path / "report.png")
    assert shot.shape[:2] == (HEIGHT, WIDTH)
    assert (shot < 250).any(axis=2).mean() > 0.05  # far from a blank page
    # The plots are drawn: the colours of lines and markers that only the SVGs use.
    assert _share_of(shot, V1_BLUE) > 0.001
    assert _share_of(shot, MARKER_STYLE["concept_drift"][0]) > 0.0001
    assert _share_of(shot, MARKER_STYLE["swap"][0]) > 0.0001
    assert _share_of(shot, FEATURE_COLOURS[1]) > 0.0005  # the second most drifted feature's PSI


def test_a_page_without_plots_has_none_of_their_colours(tmp_path: Path, page_html: str) -> None:
    """The colour checks above can fail: the same page with its plots cut out shows none."""
    html = page_html
    while "<svg" in html:
        start = html.index("<svg")
        html = html[:start] + html[html.index("</svg>", start) + len("</svg>") :]
    page = tmp_path / "index.html"
    page.write_text(html, encoding="utf-8")
    shot = screenshot(page, tmp_path / "bare.png")
    assert _share_of(shot, V1_BLUE) < 0.0001
    assert _share_of(shot, MARKER_STYLE["concept_drift"][0]) < 0.0001
