"""``medgan report RESULT.json``: the utility report of a real tiny run holds every section
(learning curve included), only embedded PNGs, the untrustworthy flag when the controls
misbehave, clear refusals, and renders in headless Chromium without console errors."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

from medgan.cli import main
from medgan.reports import default_output, report_kind, write_report
from medgan.reports.utility_report import utility_report_html
from medgan.utility.records import UtilityConfig
from medgan.workflows.utility import UtilityRequest, run_utility
from tests.core._utility_data import good_synthetic, separable_data
from tests.core.test_report import _PROBE, CHROMIUM, _check_images, _chromium, _sections

SECTIONS = ("verdict", "protocol", "table", "intervals", "controls", "learning", "warnings")


@pytest.fixture(scope="module")
def result_json(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real tiny run: 6 patients, 3 folds x 2 seeds, two ratios, two fractions, controls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = UtilityConfig(seeds=2, folds=3, steps=6, batch_size=8, fractions=(0.5, 1.0),
                               ratios=(0.5, 1.0), bootstrap=200, device="cpu", controls=True)  # fmt: skip
        data = separable_data(n_patients=6, per_class=3)
        result = run_utility(UtilityRequest(config, data=data, synthetic=good_synthetic()))
    finally:
        torch.set_num_threads(before)
    path = tmp_path_factory.mktemp("utility") / "study.json"
    path.write_text(json.dumps(result.to_dict(), allow_nan=False), encoding="utf-8")
    yield path


def test_utility_report_has_every_section(result_json: Path) -> None:
    assert report_kind(result_json) == "utility"
    assert main(["report", str(result_json)]) == 0
    page_path = default_output(result_json, "utility")
    assert page_path == result_json.with_name("study.report.html") and page_path.is_file()
    page = page_path.read_text(encoding="utf-8")
    assert tuple(_sections(page)) == SECTIONS
    assert _check_images(page) >= 3  # two interval plots + the learning curves
    assert '<meta name="medgan-report" content="utility">' in page
    doc = json.loads(result_json.read_text())
    assert doc["verdict_text"].split(":")[0] in page and "95 % CI" in page
    for arm in ("real+classic", "synthetic@0.5", "synthetic@1", "shuffled@1", "extra_real"):
        assert f"<td>{arm}</td>" in page, arm
    assert "Shuffled labels" in page and "Extra real patients" in page
    assert "UNTRUSTWORTHY" not in page and "The controls behaved" in page
    text = re.sub(r'src="data:[^"]*"', "", page)  # the words, not the embedded PNGs
    assert not any(f"p{i:02d}" in text for i in range(6))  # no patient key (fold-local only)


def test_untrustworthy_is_shown_at_the_top(result_json: Path, tmp_path: Path) -> None:
    doc = json.loads(result_json.read_text())
    bad = copy.deepcopy(doc)
    bad["trustworthy"] = False
    bad["controls"]["trustworthy"] = False
    bad["controls"]["shuffled"]["ok"] = False
    bad["config"]["fractions"] = [0.5]
    bad["summary"] = {"0.5": bad["summary"]["0.5"]}  # one fraction: no learning curve
    page = utility_report_html(bad)
    header = page.split("<section", 1)[0]
    assert "UNTRUSTWORTHY RESULT" in header and "MISBEHAVED" in page
    assert "NO — misbehaved" in page
    assert "learning" not in _sections(page)


def test_bad_utility_inputs_are_clear(result_json: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else"}')
    assert main(["report", str(other)]) == 1
    assert "not a utility result" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["report", str(broken)]) == 1
    assert "Cannot read" in capsys.readouterr().err
    assert main(["report", str(result_json), "--show-real-pairs"]) == 1
    assert "apply to export reports only" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", str(result_json), "--out", str(blocker / "r.html")]) == 1
    assert "Cannot write the report" in capsys.readouterr().err
    out = write_report(result_json, tmp_path / "elsewhere" / "u.html")
    assert out.is_file() and not list(tmp_path.glob("elsewhere/*.tmp*"))  # atomic write


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)
def test_utility_report_renders_in_a_real_browser(result_json: Path, tmp_path: Path) -> None:
    page = write_report(result_json, tmp_path / "utility.report.html")
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
    run = _chromium("--window-size=1100,900", "--virtual-time-budget=5000", "--dump-dom",
                    probe.as_uri())  # fmt: skip
    found = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
    assert found, run.stderr[-2000:]
    info = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert tuple(info["sections"]) == SECTIONS
    assert info["height"] > 2000
    assert info["imgs"] and all(w > 0 and cw > 0 and ch > 0 for w, cw, ch in info["imgs"])
    assert not [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    png, pdf = tmp_path / "utility.png", tmp_path / "utility.pdf"
    shot = _chromium("--window-size=1100,1400", f"--screenshot={png}", page.as_uri())
    assert png.is_file() and not [x for x in shot.stderr.splitlines() if ":CONSOLE" in x]
    with Image.open(png) as im:
        assert im.size == (1100, 1400) and im.convert("L").getextrema()[0] < 100
    printed = _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    raw = pdf.read_bytes()
    assert raw.startswith(b"%PDF"), printed.stderr[-2000:]
    assert len(re.findall(rb"/Type\s*/Page[^s]", raw)) >= 2
