"""``medgan report``: model and export reports hold every section, only embedded images, no
scripts or network references; a model file without history still gets a report; headless
Chromium renders both to PNG and PDF without console errors (figures of non-zero size)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from medgan.cli import main
from tests.core._report_data import train_model, write_study

MODEL_SECTIONS = ("overview", "data", "settings", "environment", "losses", "discriminator",
                  "augmentation", "timing", "quality", "samples")  # fmt: skip
EXPORT_SECTIONS = ("summary", "filters", "scores", "contact", "pairs", "checksums")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDGAN_CACHE", str(root / "cache"))  # never the user's cache
        data = write_study(root / "data")
        model = train_model(data, root / "m.safetensors")
        export = root / "export"
        argv = ["generate", "--model", str(model), "-n", "10", "--seed", "2", "--out",
                str(export), "--data", str(data), "--keep-top", "5", "--device", "cpu"]  # fmt: skip
        assert main(argv) == 0
    yield {"root": root, "data": data, "model": model, "export": export}


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


def _check_images(page: str) -> int:
    """Every <img> is an embedded PNG that decodes to a non-empty image."""
    sources = re.findall(r'<img src="([^"]*)"', page)
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:40]
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.load()
            assert im.width > 0 and im.height > 0
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from a network
    return len(sources)


def test_model_report_has_every_section(made: dict[str, Path]) -> None:
    assert main(["report", str(made["model"]), "--samples", "8"]) == 0
    out = made["model"].with_name("m.report.html")
    page = out.read_text(encoding="utf-8")
    assert tuple(_sections(page)) == MODEL_SECTIONS
    # losses, D outputs, augmentation, throughput, quality, 2 training grids, fresh samples
    assert _check_images(page) >= 8
    assert "Fixed-noise samples at step 2" in page and "Fixed-noise samples at step 4" in page
    assert "no training history" not in page
    assert "REPORT-0" not in page and "Fixture" not in page  # no patient identity


def test_model_without_history_gets_a_report_with_a_note(made: dict[str, Path], tmp_path: Path):
    from medgan.models.modelfile import load_model, save_model

    loaded = load_model(made["model"])
    meta = loaded.metadata
    meta.history = {}
    old = save_model(tmp_path / "old.safetensors", loaded.state, meta)
    assert main(["report", str(old), "--samples", "0", "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert tuple(_sections(page)) == MODEL_SECTIONS
    assert "holds no training history" in page
    assert page.count("Not available") >= 4
    _check_images(page)  # the quality curve is still drawn from the metadata


def test_export_report_has_every_section(made: dict[str, Path]) -> None:
    assert main(["report", str(made["export"]), "--model", str(made["model"])]) == 0
    page = (made["export"] / "report.html").read_text(encoding="utf-8")
    assert tuple(_sections(page)) == EXPORT_SECTIONS
    assert _check_images(page) >= 5  # filter bars, 3 histograms, kept and rejected sheets
    assert "No real patient slice is shown" in page
    assert "memorization threshold" in page and "Rejected: 5 of 5" in page
    manifest = made["export"] / "manifest.json"
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() in page
    assert "report.html</td>" not in page  # the report does not list itself


def test_real_pairs_only_on_request(made: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "pairs.html"
    argv = ["report", str(made["export"]), "--model", str(made["model"]), "--data",
            str(made["data"]), "--show-real-pairs", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    page = out.read_text(encoding="utf-8")
    assert "SHOWS REAL PATIENT SLICES" in page and "RMS distance on the [-1, 1] scale" in page
    assert main(["report", str(made["export"]), "--show-real-pairs"]) == 1  # needs model + data


def test_bad_targets_and_destinations_are_clear(made, tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 1
    assert "not a MedGAN Studio export" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert (
        main(["report", str(made["model"]), "--samples", "0", "--out", str(blocker / "r.html")])
        == 1
    )
    assert "Cannot write the report" in capsys.readouterr().err
    other = tmp_path / "other.safetensors"
    from medgan.models.modelfile import load_model, save_model

    loaded = load_model(made["model"])
    loaded.metadata.seed = 99  # another file: the export's SHA-256 no longer matches
    save_model(other, loaded.state, loaded.metadata)
    assert (
        main(
            [
                "report",
                str(made["export"]),
                "--model",
                str(other),
                "--out",
                str(tmp_path / "x.html"),
            ]
        )
        == 1
    )
    assert "not the model that made this export" in capsys.readouterr().err


_PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => [i.naturalWidth, i.clientWidth, i.clientHeight]);
  const out = {height: document.documentElement.scrollHeight, imgs: imgs,
               sections: [...document.querySelectorAll('section')].map(s => s.id)};
  const pre = document.createElement('pre'); pre.id = 'probe';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});</script>"""


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
           "--no-first-run", "--enable-logging=stderr", "--v=0", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)
def test_reports_render_in_a_real_browser(made: dict[str, Path], tmp_path: Path) -> None:
    model_page = made["model"].with_name("m.report.html")
    if not model_page.exists():
        assert main(["report", str(made["model"]), "--samples", "8"]) == 0
    export_page = made["export"] / "report.html"
    if not export_page.exists():
        assert main(["report", str(made["export"])]) == 0
    for page, sections in ((model_page, MODEL_SECTIONS), (export_page, EXPORT_SECTIONS)):
        probe = tmp_path / f"probe-{page.name}"
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
        run = _chromium("--window-size=1100,900", "--virtual-time-budget=5000", "--dump-dom",
                        probe.as_uri())  # fmt: skip
        found = re.search(r'<pre id="probe">(.*?)</pre>', run.stdout, re.S)
        assert found, run.stderr[-2000:]
        info = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        assert tuple(info["sections"]) == sections
        assert info["height"] > 2000  # a long page, not a blank or collapsed one
        assert info["imgs"] and all(w > 0 and cw > 0 and ch > 0 for w, cw, ch in info["imgs"])
        console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
        assert not console, console
        png, pdf = tmp_path / f"{page.stem}.png", tmp_path / f"{page.stem}.pdf"
        shot = _chromium("--window-size=1100,1400", f"--screenshot={png}", page.as_uri())
        assert png.is_file() and not [x for x in shot.stderr.splitlines() if ":CONSOLE" in x]
        with Image.open(png) as im:
            assert im.size == (1100, 1400) and im.convert("L").getextrema()[0] < 100  # drawn
        printed = _chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
        raw = pdf.read_bytes()
        assert raw.startswith(b"%PDF"), printed.stderr[-2000:]
        assert len(re.findall(rb"/Type\s*/Page[^s]", raw)) >= 2  # several A4 pages


def test_data_section_lists_classes_and_segments_with_counts() -> None:
    from medgan.models.modelfile import ModelMetadata
    from medgan.reports.model_report import data_section

    meta = ModelMetadata(recipe="default", resolution=64, training_summary={
        "modality": "CT", "n_patients": 3, "n_train": 40, "window": {"center": 40, "width": 80},
        "class_counts": {"normal": 30, "lesion": 10}, "segment_slice_counts": {"liver": 12},
    })  # fmt: skip
    html = data_section(meta).render()
    assert "Class counts" in html and "lesion" in html and ">10<" in html
    assert "Segment slice counts" in html and "liver" in html
    assert "unlabelled" not in html
