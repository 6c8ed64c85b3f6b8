"""The CLI and the GUI write the same manifest for the same model, data, seed and settings.

CLI: ``medgan generate --data ... --out``. GUI: the Data page's builder, the Generate page's
worker function and page logic (filters, decisions), the Export page's export. Both run on
the same tiny model and study with the same settings (top-k, memorization override, real
slices included); the manifests are compared field by field, ignoring only the creation
time (both folders have the same name; paths never reach a manifest).
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medgan.cli import main
from tests.dicom_factory import write_series

N, SEED, TOP_K = 12, 5, 8


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models("default", 64, z_dim=16, width=8)
    with torch.no_grad():  # an untrained net gives near-constant images: make samples distinct
        for param in g.parameters():
            param.normal_(0.0, 0.3)
    meta = ModelMetadata(recipe="default", resolution=64, z_dim=16, model_kwargs={"width": 8},
                         window=(40.0, 400.0), modality="CT", pixel_spacing=(0.5, 0.5))  # fmt: skip
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_model(path, {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    for k in range(2):
        pixels = (rng.normal(0, 250, (5, 40, 40)) + 1064).astype(np.int16)
        write_series(root / f"p{k}", n=5, rows=40, cols=40, pixels=pixels,
                     patient_id=f"P{k}", seed=k)  # fmt: skip
    return root


def _gui_export(qtbot: Any, model: Path, data: Path, dest: Path) -> None:
    from medgan.dataset.training_set import TrainingSetConfig
    from medgan.dicom.index import scan_folder
    from ui.jobs import generate_and_score
    from ui.pages import data_page
    from ui.pages.export_page import ExportPage
    from ui.pages.generate_page import GeneratePage
    from ui.state import AppState

    state = AppState()
    series = [s for s in scan_folder(data).series if s.trainable]
    # The set the model was trained on: the model's resolution and window.
    config = TrainingSetConfig(resolution=64, window_center=40.0, window_width=400.0)
    ts, _ = data_page.run_build(series, config, {}, cancel=threading.Event())
    state.set_training_set(ts, ts.summary())
    state.set_model_path(str(model))
    gen = GeneratePage(state)
    qtbot.addWidget(gen)
    gen.count.setValue(N)
    gen.seed.setValue(SEED)
    gen.top_k.setValue(TOP_K)
    gen.allow_memorized.setChecked(True)
    # What the Generate page's worker runs, with the arguments the page gives it.
    result = generate_and_score(
        state.model_path, int(gen.count.value()), seed=int(gen.seed.value()),
        batch_size=int(gen.batch.value()), training_images=state.training_images,
        patient_keys=ts.patient_keys, progress=lambda *a, **k: None, cancel=threading.Event(),
    )  # fmt: skip
    gen.show_result(result)
    assert gen.current_decisions() is not None
    export = ExportPage(state)
    qtbot.addWidget(export)
    export.format_combo.setCurrentIndex(export.format_combo.findData("npy"))
    export.destination.setText(str(dest))
    export.include_real.setChecked(True)
    assert export.start_export()
    qtbot.waitUntil(lambda: not export.is_busy(), timeout=60000)
    assert export.outcome == "done", export.status_label.text()


def _same(a: Any, b: Any) -> bool:
    """Equal, except floats within 1e-5 (relative): the GUI runs torch on one thread fewer,
    which changes the last bits of a sum (docs/benchmarks.md, determinism)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _csv_rows(text: str) -> list[dict[str, Any]]:
    def value(cell: str) -> Any:
        try:
            return float(cell) if any(c in cell for c in ".eE") else cell
        except ValueError:
            return cell

    return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def _comparable(folder: Path) -> dict[str, Any]:
    doc = json.loads((folder / "manifest.json").read_text())
    doc.pop("created_utc")
    readme = [line for line in (folder / "README.md").read_text().splitlines()
              if not line.startswith("- Created ")]  # fmt: skip
    return {"manifest": doc, "readme": readme, "csv": (folder / "manifest.csv").read_text()}


def test_cli_and_gui_write_the_same_manifest(qtbot: Any, model: Path, data: Path,
                                              tmp_path: Path) -> None:  # fmt: skip
    cli_out, gui_out = tmp_path / "cli" / "export", tmp_path / "gui" / "export"
    cli_out.parent.mkdir()
    gui_out.parent.mkdir()
    argv = ["generate", "--model", str(model), "-n", str(N), "--seed", str(SEED),
            "--out", str(cli_out), "--format", "npy", "--data", str(data), "--keep-top",
            str(TOP_K), "--allow-memorized", "--include-real"]  # fmt: skip
    assert main(argv) == 0
    _gui_export(qtbot, model, data, gui_out)

    cli, gui = _comparable(cli_out), _comparable(gui_out)
    for key in sorted(set(cli["manifest"]) | set(gui["manifest"])):
        assert _same(cli["manifest"].get(key), gui["manifest"].get(key)), key
    memo, counts = cli["manifest"]["memorization"], cli["manifest"]["counts"]
    assert memo["checked"] is True and memo["override"] is True and memo["n_training_slices"] == 10
    assert counts["synthetic_exported"] == TOP_K and counts["real_exported"] == 10
    assert cli["readme"] == gui["readme"]
    assert _same(_csv_rows(cli["csv"]), _csv_rows(gui["csv"]))
    # Same seeds and indices; the GUI's one thread fewer may move the last float bits.
    np.testing.assert_allclose(np.load(cli_out / "images.npy"), np.load(gui_out / "images.npy"),
                               rtol=1e-5, atol=1e-3)  # fmt: skip
