"""Every measured figure in the README and docs/ is written from the benchmark results, never by hand.

* Every generated block (the README's Performance summary, the tables of docs/performance.md and
  of the other pages that quote a measurement) equals what benchmarks/report.py renders from the
  result files in benchmarks/results/: a figure edited by hand, or a result file changed without
  rerunning the report step, fails here.
* Every run a page cites is a file in benchmarks/results/ (no page cites a file users lack), and
  every result file gives at least one section (stale ones are deleted).
* Outside the generated blocks, the README and docs/ (but development.md, which records how long
  the suite itself ran) carry no measured figure (a number with a unit of time, speed, ratio,
  share or quality) except the targets, limits and settings listed in ALLOWED.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("numpy")

from benchmarks import report  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
# Every page but development.md, which records how long the suite's own levels took to run.
PAGES = ["README.md"] + sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")
                               if p.name != "development.md")
# A number with a unit of time, speed, ratio, share or quality ("4×4" and "640×360" are sizes).
FIGURE = re.compile(r"(?<![\w.])[-−]?\d+(?:[.,]\d+)?(?:\s?[–-]\s?\d+(?:\.\d+)?)?\s?"
                    r"(?:ms\b|s/it|s per iter\w*|FPS|fps|GFLOP/s|GOP/s|GMAC/s|×(?!\s?\d)|x\b|%|dB\b|"
                    r"min\b|s\b|hours?\b|seconds?\b|minutes?\b)")
# Figures that are not measurements: targets, limits, definitions and settings.
ALLOWED = {
    "40 dB": "the FP16 export's parity limit",
    "100 dB": "the PSNR cap of pix2pix eval",
    "30 dB": "the INT8 export's parity limit",
    "95 %": "the end-to-end target",
    "10×": "the edge students' speed target",
    "2 ms": "the pre- + post-processing budget",
    "5 ms": "part of the live latency target",
    "2 ×": "the FLOP definition (2 x multiply-adds)",
    "0.75 ×": "the busy-CPU threshold of training's note",
    "10 s": "the browser view's stall timeout",
    "30 s": "the model download's default timeout",
    "0.25 s": "the reconnect backoff's first step",
    "8 s": "the reconnect backoff's last step",
    "2×": "issue 19's target for the pan warping error (steady video)",
    "3×": "issue 19's stretch target for the pan warping error",
    "0.3 dB": "the held-out PSNR tolerance of issue 19's targets",
    "15 %": "issue 19's latency limit for the anti-aliased U-Net",
}


def merged():
    return report.merge(report.result_files(RESULTS))


def test_every_generated_block_is_what_the_results_give():
    """Fails when a figure in a generated block was edited by hand, or when the results changed
    and `python -m benchmarks.report` was not run."""
    assert report.stale_blocks(merged()) == []


def test_the_pages_have_their_generated_blocks():
    blocks = {p: [m.group("name") for m in report.BLOCK.finditer((REPO / p).read_text())]
              for p in PAGES}
    assert blocks["README.md"] == ["summary"]
    assert {"runs", "inference", "e2e", "frames", "train", "reference", "quality", "int8", "live",
            "flicker", "ort"} <= set(blocks["docs/performance.md"])
    assert "edge" in blocks["docs/distill.md"] and "onnx-vs-torch" in blocks["docs/export.md"]
    assert blocks["docs/steady.md"] == ["steady"]


def test_a_hand_edited_figure_is_caught(tmp_path):
    """The check itself can fail: one digit changed in the README's summary, or in a table of
    docs/performance.md, is reported."""
    m = merged()
    for page in ("README.md", "docs/performance.md"):
        repo = tmp_path / page.replace("/", "_")
        (repo / "docs").mkdir(parents=True)
        text = (REPO / page).read_text()
        block = next(b for b in report.BLOCK.finditer(text) if b.group("name") in ("summary", "inference"))
        body = block.group("body")
        digit = re.search(r"\d\.\d", body)
        assert digit, f"no figure in {page}'s {block.group('name')} block"
        edited = body[:digit.start()] + str((int(body[digit.start()]) + 1) % 10) + body[digit.start() + 1:]
        (repo / page).write_text(text.replace(body, edited))
        assert report.stale_blocks(m, repo) == [f"{page}: {block.group('name')}"]


def test_every_cited_run_is_a_result_file_and_every_result_file_is_cited():
    cited = set()
    for page in PAGES + ["docs/development.md"]:
        cited |= set(re.findall(r"`((?:full|quick|smoke)-\d{8}T\d{6}Z\.json)`", (REPO / page).read_text()))
    files = {p.name for p, _ in report.result_files(RESULTS)}   # the suite's full runs
    assert cited and cited <= files, sorted(cited - files)
    assert files <= cited, f"result files no page cites (stale: delete them): {sorted(files - cited)}"
    assert merged()["stale"] == []


def _prose_figures(page: str) -> list[str]:
    text = report.BLOCK.sub("", (REPO / page).read_text())
    found, fenced = [], False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            found += [f"{page}:{n}: {m.group(0)}" for m in FIGURE.finditer(re.sub(r"`[^`]*`", "", line))
                      if m.group(0).replace("−", "-") not in ALLOWED]
    return found


@pytest.mark.parametrize("page", PAGES)
def test_no_measured_figure_outside_the_generated_blocks(page):
    """A measurement quoted by hand in prose goes stale with the next run: write it through a
    generated block (benchmarks/report.py BLOCKS) or state it without the figure."""
    assert _prose_figures(page) == []


def test_the_prose_check_catches_a_hand_copied_figure(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("The model takes 41.7 ms here, 2.3x faster.\n"
                                               "A 4×4 kernel, within the 2 ms budget.\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert _prose_figures("docs/page.md") == ["docs/page.md:1: 41.7 ms", "docs/page.md:1: 2.3x"]
