"""PHI canary: patient identity planted in every header field must never reach an export,
a manifest, the model file or a log.

A small study is written whose headers hold marker strings in every identifying attribute
(and in private tags); a model file is made from it through the engine's API; then
``medgan generate`` exports in every format, with and without real slices, while every log
record (DEBUG) and the command's output are captured. Every byte of every file written
(gzip, zip and PNG streams decompressed) and every log line is searched for the markers.
"""

from __future__ import annotations

import gzip
import io
import logging
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medgan.cli import main
from medgan.export import FORMATS
from medgan.export.config import LABELLED_FORMATS
from tests.dicom_factory import write_series
from tests.orthanc import memory_keyring, orthanc_missing, start_orthanc

TOKEN = "QZXCANARY"
DATE_MARKERS = ("19120623", "19310417")
PATIENTS = (
    {"name": f"{TOKEN}PNA^{TOKEN}GIVENA", "id": f"{TOKEN}PIDA"},
    {"name": f"{TOKEN}PNB^{TOKEN}GIVENB", "id": f"{TOKEN}PIDB"},
)


def _identifying_tags(k: int) -> dict[str, object]:
    """Keyword → marker for every identifying attribute the factory can set."""
    return {
        "PatientBirthDate": DATE_MARKERS[0],
        "PatientBirthTime": "010203",
        "OtherPatientIDs": f"{TOKEN}OPID{k}",
        "OtherPatientNames": f"{TOKEN}OPN{k}",
        "PatientAddress": f"{TOKEN}ADDR{k}",
        "PatientTelephoneNumbers": f"{TOKEN}TEL{k}",
        "PatientComments": f"{TOKEN}PCOMMENT{k}",
        "PatientMotherBirthName": f"{TOKEN}MOTHER{k}",
        "MilitaryRank": f"{TOKEN}RANK{k}",
        "EthnicGroup": f"{TOKEN}ETH{k}",
        "AccessionNumber": f"{TOKEN}ACC{k}",
        "InstitutionName": f"{TOKEN}INST{k}",
        "InstitutionAddress": f"{TOKEN}INSTADDR{k}",
        "InstitutionalDepartmentName": f"{TOKEN}DEPT{k}",
        "StationName": f"{TOKEN}STN{k}",
        "DeviceSerialNumber": f"{TOKEN}DSN{k}",
        "ReferringPhysicianName": f"{TOKEN}REF^DOC{k}",
        "PerformingPhysicianName": f"{TOKEN}PERF^DOC{k}",
        "PhysiciansOfRecord": f"{TOKEN}REC^DOC{k}",
        "NameOfPhysiciansReadingStudy": f"{TOKEN}READ^DOC{k}",
        "OperatorsName": f"{TOKEN}OPER^TECH{k}",
        "RequestingPhysician": f"{TOKEN}REQ^DOC{k}",
        "StudyID": f"{TOKEN}S{k}",
        "StudyDescription": f"{TOKEN}STUDYDESC{k}",
        "ProtocolName": f"{TOKEN}PROTO{k}",
        "RequestedProcedureDescription": f"{TOKEN}PROC{k}",
        "ImageComments": f"{TOKEN}IMGCOMMENT{k}",
        "StudyDate": DATE_MARKERS[1],
        "SeriesDate": DATE_MARKERS[1],
        "AcquisitionDate": DATE_MARKERS[1],
        "ContentDate": DATE_MARKERS[1],
        "InstanceCreationDate": DATE_MARKERS[1],
    }


def _write_study(root: Path) -> tuple[list[str], list[str]]:
    """Two patients, one CT series each, markers everywhere. Returns (markers, series UIDs)."""
    rng = np.random.default_rng(5)
    markers = [TOKEN, *DATE_MARKERS]
    uids: list[str] = []
    for k, patient in enumerate(PATIENTS):
        tags = _identifying_tags(k)
        pixels = (rng.normal(0, 250, (6, 40, 40)) + 1064).astype(np.int16)
        paths = write_series(
            root / f"p{k}", n=6, rows=40, cols=40, pixels=pixels,
            patient_name=patient["name"], patient_id=patient["id"],
            series_description=f"{TOKEN}SERIESDESC{k}", extra_tags=tags, seed=k,
        )  # fmt: skip
        markers += [patient["id"], *(str(v) for v in tags.values() if TOKEN in str(v))]
        for path in paths:  # private tags too
            ds = pydicom.dcmread(path)
            block = ds.private_block(0x0029, "QZX PRIVATE CREATOR", create=True)
            block.add_new(0x10, "LO", f"{TOKEN}PRIVATE{k}")
            block.add_new(0x11, "LO", patient["name"])
            ds.save_as(path, enforce_file_format=True)
            uids += [ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID]
            if ds.get("FrameOfReferenceUID"):
                uids.append(ds.FrameOfReferenceUID)
        markers.append(f"{TOKEN}PRIVATE{k}")
    return sorted(set(markers)), sorted(set(uids))


def _make_model(data: Path, out: Path) -> Path:
    """A model file through the engine's API: scan, training set from the marked study, a few
    training steps at a tiny width, metadata as ``medgan train`` writes it."""
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.models.modelfile import ModelMetadata, save_model
    from medgan.train.config import TrainConfig
    from medgan.train.trainer import Trainer

    scan = scan_folder(data)
    training = build_training_set(scan.series, TrainingSetConfig.with_window("file", resolution=64))
    config = TrainConfig.for_recipe(
        "default", resolution=64, steps=2, batch_size=4, width=8, device="cpu",
        checkpoint_dir=str(out.parent / "checkpoints"), sample_every=1000, n_samples=4,
    )  # fmt: skip
    trainer = Trainer(config, training.images)
    result = trainer.run()
    assert result.status == "finished", result.message
    summary = training.summary()
    spacing = summary.get("model_pixel_spacing_mm")
    meta = ModelMetadata(
        recipe="default", resolution=64, z_dim=config.z_dim, model_kwargs={"width": 8},
        window=(float(training.window.center), float(training.window.width)),
        modality=summary.get("modality", ""), pixel_spacing=tuple(spacing) if spacing else None,
        training_summary=summary, train_config=config.to_dict(), seed=0, step=result.step,
    )  # fmt: skip
    return save_model(out, trainer.model_state(), meta)


def _api_exports(model: Path, data: Path, parent: Path) -> list[Path]:
    """Export every format with and without real slices via ``export_set``."""
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.export import (
        ExportConfig,
        export_set,
        provenance_from_model,
        real_from_training,
        synthetic_from_engine,
    )
    from medgan.generate.sampling import generate
    from medgan.models.modelfile import load_model

    loaded = load_model(model)
    meta = loaded.metadata
    generated = generate(loaded, 2, seed=5, device="cpu")
    training = build_training_set(
        scan_folder(data).series,
        TrainingSetConfig(resolution=64, window_center=meta.window[0], window_width=meta.window[1]),
    )
    provenance = provenance_from_model(model, meta, seed=5)
    outputs = []
    for fmt in FORMATS:
        for include_real in (False, True):
            out = parent / f"api-{fmt}-{include_real}"
            config = ExportConfig(format=fmt, destination=str(out), include_real=include_real)
            export_set(synthetic_from_engine(generated), config, provenance,
                       real=real_from_training(training.images), durable=False)  # fmt: skip
            outputs.append(out)
    return outputs


def _blobs(path: Path) -> list[bytes]:
    """The file's bytes plus every compressed stream inside it, decompressed."""
    raw = path.read_bytes()
    blobs = [raw]
    if raw[:2] == b"\x1f\x8b":
        blobs.append(gzip.decompress(raw))
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            blobs += [archive.read(name) for name in archive.namelist()]
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        pos, idat = 8, b""
        while pos < len(raw):
            (length,) = struct.unpack(">I", raw[pos : pos + 4])
            kind, body = raw[pos + 4 : pos + 8], raw[pos + 8 : pos + 8 + length]
            if kind == b"IDAT":
                idat += body
            elif kind == b"zTXt":
                blobs.append(zlib.decompress(body[body.index(b"\x00") + 2 :]))
            elif kind == b"iTXt" and body[body.index(b"\x00") + 1] == 1:
                rest = body[body.index(b"\x00") + 3 :]
                rest = rest[rest.index(b"\x00") + 1 :]
                blobs.append(zlib.decompress(rest[rest.index(b"\x00") + 1 :]))
            pos += 12 + length
        blobs.append(zlib.decompress(idat))
    return blobs


def _assert_clean(where: str, blobs: list[bytes], needles: list[str]) -> None:
    for blob in blobs:
        low = blob.lower()
        for needle in needles:
            for encoded in (needle.lower().encode(), needle.lower().encode("utf-16-le")):
                assert encoded not in low, f"{needle!r} leaked into {where}"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    root = tmp_path_factory.mktemp("canary")
    markers, uids = _write_study(root / "data")
    # Sanity: the markers really are in the inputs (else the test would prove nothing).
    sample = next((root / "data" / "p0").iterdir()).read_bytes()
    assert TOKEN.encode() in sample and DATE_MARKERS[0].encode() in sample
    assert f"{TOKEN}PRIVATE0".encode() in sample
    return root, markers, uids


def test_no_marker_reaches_exports_manifests_model_or_logs(
    study: tuple[Path, list[str], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, markers, uids = study
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    model = _make_model(root / "data", tmp_path / "model.safetensors")
    series_uid = pydicom.dcmread(next((root / "data" / "p1").iterdir())).SeriesInstanceUID

    # Every format through the command line (real slices in every other run) ...
    outputs = []
    for k, fmt in enumerate(FORMATS):
        include_real = k % 2 == 0
        out = tmp_path / "exports" / f"cli-{fmt}-{'mixed' if include_real else 'synthetic'}"
        argv = ["-v", "generate", "--model", str(model), "-n", "3", "--seed", "3",
                "--out", str(out), "--format", fmt, "--data", str(root / "data"),
                "--allow-memorized", "--no-dedupe", "--device", "cpu"]  # fmt: skip
        argv += ["--include-real"] if include_real else ["--series", series_uid]
        assert main(argv) == 0, capsys.readouterr().err
        outputs.append(out)
    # ... and every format with and without real slices through the library API.
    outputs += _api_exports(model, root / "data", tmp_path / "exports")
    # A refused export (destination exists) logs and prints its message too.
    assert main(["generate", "--model", str(model), "-n", "2", "--out", str(outputs[0]),
                 "--data", str(root / "data")]) == 1  # fmt: skip

    files = [model] + [p for out in outputs for p in out.rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    files += [p for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".dcm", ".png", ".tif", ".npy", ".npz", ".gz", ".csv", ".json", ".md"} <= kinds
    assert any(p.name.startswith("real_") for p in files)  # real slices were exported
    needles = markers + uids
    for path in files:
        _assert_clean(str(path.relative_to(tmp_path)), _blobs(path), needles)

    captured = capsys.readouterr()
    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    )
    assert "Exported" in captured.out and "Scanned" in log_text  # the logs were captured
    _assert_clean("the log records", [log_text.encode()], needles)
    _assert_clean("stdout/stderr", [captured.out.encode(), captured.err.encode()], needles)


@pytest.mark.skipif(orthanc_missing() is not None, reason=orthanc_missing() or "")
def test_no_marker_reaches_pacs_logs_or_cache_metadata(
    study: tuple[Path, list[str], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The marked study on a real Orthanc: profile, echo, find, get over DIMSE and DICOMweb."""
    import keyring

    root, markers, uids = study
    for var, sub in (("MEDGAN_CONFIG_DIR", "config"), ("MEDGAN_PACS_CACHE", "pacs")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    caplog.set_level(logging.DEBUG)
    backend = keyring.get_keyring()
    keyring.set_keyring(memory_keyring())
    server = start_orthanc(tmp_path / "orthanc")
    try:
        server.upload(sorted(p for p in (root / "data").rglob("*") if p.is_file()))
        dimse = ["--dimse", f"127.0.0.1:{server.dicom_port}", "--called-aet", server.aet]
        web = ["--dicomweb", server.dicomweb_url, "--auth", "basic", "--username", server.user,
               "--secret-env", "MEDGAN_PACS_SECRET", "--workers", "1"]  # fmt: skip
        monkeypatch.setenv("MEDGAN_PACS_SECRET", server.password)
        for name, args in (("c-dimse", dimse), ("c-web", web)):
            assert main(["-v", "pacs", "profile", "add", name, *args]) == 0
            assert main(["-v", "pacs", "echo", name]) == 0
            for level in ("study", "series"):
                assert main(["-v", "pacs", "find", name, "--level", level, "--patient-name", TOKEN]) == 0
            study_uid = pydicom.dcmread(next((root / "data" / "p0").iterdir())).StudyInstanceUID
            assert main(["-v", "pacs", "get", name, "--study", str(study_uid), "--quiet"]) == 0
    finally:
        server.stop()
        keyring.set_keyring(backend)
    captured = capsys.readouterr()
    log_text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "Retrieved 1 series" in log_text and "1 series ready" in captured.out
    _assert_clean("the PACS log records", [log_text.encode()], markers + uids)
    _assert_clean("PACS stdout/stderr", [captured.out.encode(), captured.err.encode()], markers)
    cache = tmp_path / "pacs"
    assert len(list(cache.glob("*/*/*/*.dcm"))) == 12  # 6 slices, twice (one per profile)
    for path in [*cache.rglob("*"), *(tmp_path / "config").rglob("*")]:
        _assert_clean(f"the name {path.name}", [path.name.encode()], markers + uids)
        if path.is_file() and path.suffix != ".dcm":  # cache metadata, profiles file
            _assert_clean(str(path.relative_to(tmp_path)), _blobs(path), markers + uids)


def test_the_byte_search_sees_inside_compressed_files(tmp_path: Path) -> None:
    """The canary's search must find a marker hidden in gzip, zip and PNG streams."""
    from PIL import Image, PngImagePlugin

    hidden = f"{TOKEN}HIDDEN".encode()
    (tmp_path / "a.gz").write_bytes(gzip.compress(hidden * 3))
    with zipfile.ZipFile(tmp_path / "b.npz", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", hidden * 3)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", (hidden * 3).decode(), zip=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "c.png", pnginfo=info)
    for name in ("a.gz", "b.npz", "c.png"):
        blobs = _blobs(tmp_path / name)
        assert hidden not in blobs[0]  # only visible once decompressed
        with pytest.raises(AssertionError, match="leaked"):
            _assert_clean(name, blobs, [f"{TOKEN}HIDDEN"])


def test_no_marker_from_seg_rtstruct_or_csv_reaches_the_cache_summary_or_logs(
    study: tuple[Path, list[str], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SEG (highdicom copies the marked patient module), RTSTRUCT and CSV inputs with more
    markers of their own: labels and masks reach the training-set cache and summary, the
    markers do not (nor the logs, nor ``medgan labels``' output and CSV export)."""
    import json
    import shutil

    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels
    from tests.dicom_factory import write_rtstruct, write_seg

    root, markers, uids = study
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    p0 = sorted((data / "p0").iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    p1 = sorted((data / "p1").iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    # The factory gives every file its own frame of reference; highdicom wants one.
    for path in p0:
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = pydicom.dcmread(p0[0]).FrameOfReferenceUID
        ds.save_as(path, enforce_file_format=True)
    masks = np.zeros((6, 40, 40), np.uint8)
    masks[2:4, 10:20, 10:20] = 1
    extra = {"ContentCreatorName": f"{TOKEN}CREATOR^SEG", "SeriesDescription": f"{TOKEN}SEGDESC",
             "ContentDescription": f"{TOKEN}SEGCONTENT"}  # fmt: skip
    write_seg(data / "seg" / "lesions.dcm", p0, masks, segment_labels=("lesion",), extra_tags=extra)
    square = np.array([[5, 5], [5, 30], [30, 30], [30, 5]])
    rt_extra = {"StructureSetLabel": f"{TOKEN}SSLABEL", "StructureSetName": f"{TOKEN}SSNAME",
                "StructureSetDescription": f"{TOKEN}SSDESC"}  # fmt: skip
    write_rtstruct(data / "rt" / "rs.dcm", p1, {"organ": {1: [square], 3: [square]}}, extra_tags=rt_extra)
    sop = str(pydicom.dcmread(p1[0]).SOPInstanceUID)
    (data / "labels.csv").write_text(
        f"sop_instance_uid,label,notes\n{sop},organ,{TOKEN}CSVNOTE\n1.2.3,organ,{TOKEN}CSVNOTE2\n"
    )
    for path in (data / "seg" / "lesions.dcm", data / "rt" / "rs.dcm"):
        assert TOKEN.encode() in path.read_bytes()  # the markers really are in the inputs
    markers = markers + [f"{TOKEN}CREATOR", f"{TOKEN}SEGDESC", f"{TOKEN}SSLABEL", f"{TOKEN}CSVNOTE"]
    caplog.clear()  # highdicom logs the source UIDs while the fixture is written

    scan = scan_folder(data)
    labels = load_labels(scan)
    assert {"lesion", "organ"} <= set(labels.segment_names())
    assert any(p.row == 3 for p in labels.problems)  # the unknown row is reported
    ts = build_training_set(scan.series, TrainingSetConfig(resolution=64, min_foreground=0.0),
                            labels=labels)  # fmt: skip
    assert ts.masks is not None and ts.masks.any() and "organ" in ts.class_names
    summary = json.dumps(ts.summary()).encode()
    assert main(["labels", str(data), "--csv", str(tmp_path / "out" / "labels.csv"), "--quiet"]) == 0
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files  # the cache entry was written
    for path in files:
        _assert_clean(str(path.relative_to(tmp_path)), _blobs(path), markers + uids)
    _assert_clean("the training-set summary", [summary], markers + uids)
    # The label CSV export names slices by SOP Instance UID (that is its format), nothing more.
    _assert_clean("the label CSV export", [(tmp_path / "out" / "labels.csv").read_bytes()], markers)
    captured = capsys.readouterr()
    log_text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    _assert_clean("the log records", [log_text.encode()], markers + uids)
    _assert_clean("medgan labels' output", [captured.err.encode()], markers)


def _embedded_png_blobs(raw: bytes, scratch: Path) -> list[bytes]:
    """Every PNG inside ``raw`` (event-file images, base64 data URIs in HTML or JSON),
    decompressed like a PNG file."""
    import base64
    import re

    pngs = [raw[i : raw.index(b"IEND", i) + 8] for i in _find_all(raw, b"\x89PNG\r\n\x1a\n")]
    for b64 in re.findall(rb'(?:base64,|png\\?"\s*:\s*\\?")([A-Za-z0-9+/=]{40,})', raw):
        pngs.append(base64.b64decode(b64))
    blobs: list[bytes] = []
    for k, png in enumerate(pngs):
        path = scratch / f"embedded-{k}.png"
        path.write_bytes(png)
        blobs += _blobs(path)
    return blobs


def _find_all(raw: bytes, needle: bytes) -> list[int]:
    found, pos = [], raw.find(needle)
    while pos >= 0:
        found.append(pos)
        pos = raw.find(needle, pos + 1)
    return found


def test_no_marker_reaches_reports_or_training_logs(
    study: tuple[Path, list[str], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``medgan train --tensorboard --metrics-csv`` on the marked study, an export, and both
    reports (the export's with the real pairs shown): no marker in any of them, nor in the
    images embedded in the HTML, the model's history or the event files."""
    root, markers, uids = study
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    data, model, export = root / "data", tmp_path / "model.safetensors", tmp_path / "export"
    assert main(["-v", "train", "--data", str(data), "--out", str(model), "--steps", "2",
                 "--batch", "4", "--device", "cpu", "--quality-every", "1", "--tensorboard",
                 str(tmp_path / "tb"), "--metrics-csv", str(tmp_path / "m.csv")]) == 0  # fmt: skip
    assert main(["generate", "--model", str(model), "-n", "4", "--out", str(export), "--data",
                 str(data), "--keep-top", "2", "--allow-memorized", "--device", "cpu"]) == 0  # fmt: skip
    assert main(["-v", "report", str(model), "--samples", "4"]) == 0
    assert main(["-v", "report", str(export), "--model", str(model), "--data", str(data),
                 "--show-real-pairs"]) == 0  # fmt: skip

    files = [model, tmp_path / "m.csv", tmp_path / "model.report.html", export / "report.html"]
    files += [p for p in (tmp_path / "tb").rglob("*") if p.is_file()]
    assert len(files) > 4 and all(p.is_file() for p in files)
    assert b"SHOWS REAL PATIENT SLICES" in (export / "report.html").read_bytes()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    needles = markers + uids
    for path in files:
        blobs = _blobs(path) + _embedded_png_blobs(path.read_bytes(), scratch)
        _assert_clean(str(path.relative_to(tmp_path)), blobs, needles)
    assert len(_embedded_png_blobs((tmp_path / "model.report.html").read_bytes(), scratch)) > 4
    assert _embedded_png_blobs(model.read_bytes(), scratch)  # the history's sample grids
    assert any(_embedded_png_blobs(p.read_bytes(), scratch) for p in (tmp_path / "tb").rglob("*.*"))

    captured = capsys.readouterr()
    log_text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    _assert_clean("the log records", [log_text.encode()], needles)
    _assert_clean("stdout/stderr", [captured.out.encode(), captured.err.encode()], needles)


def test_no_marker_reaches_labelled_exports_or_logs(
    study: tuple[Path, list[str], list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Labelled exports (class folders, pairs, nnU-Net, MONAI, DICOM + SEG) of a set scored
    against real slices whose classes come from a marked CSV and masks from a marked SEG,
    with the real slices included: no marker in any file (SEGs written by highdicom from the
    exported images included), nor in the logs."""
    import shutil

    from medgan.curate.label_fidelity import FidelityConfig
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels
    from medgan.export import ExportConfig
    from medgan.generate.sampling import GeneratedSet
    from medgan.workflows.curation import CurateRequest, curate
    from medgan.workflows.exporting import ExportRequest, export_curated
    from medgan.workflows.generation import GenerateRequest, score_generated
    from tests.dicom_factory import write_seg

    root, markers, uids = study
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    p0 = sorted((data / "p0").iterdir(), key=lambda p: float(pydicom.dcmread(p).ImagePositionPatient[2]))
    for path in p0:  # one frame of reference for the SEG (the factory gives each file its own)
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = pydicom.dcmread(p0[0]).FrameOfReferenceUID
        ds.save_as(path, enforce_file_format=True)
    masks = np.zeros((6, 40, 40), np.uint8)
    masks[1:5, 12:20, 12:20] = 1
    extra = {"ContentCreatorName": f"{TOKEN}CREATOR^SEG", "SeriesDescription": f"{TOKEN}SEGDESC",
             "ContentDescription": f"{TOKEN}SEGCONTENT"}  # fmt: skip
    write_seg(data / "seg" / "lesions.dcm", p0, masks, segment_labels=("lesion",), extra_tags=extra)
    rows = [f"{pydicom.dcmread(p).SeriesInstanceUID},{name},{TOKEN}CSVNOTE"
            for p, name in ((p0[0], "with lesion"), (next((data / "p1").iterdir()), "none"))]  # fmt: skip
    (data / "labels.csv").write_text("series_instance_uid,label,notes\n" + "\n".join(rows) + "\n")
    markers = markers + [f"{TOKEN}CREATOR", f"{TOKEN}SEGDESC", f"{TOKEN}SEGCONTENT", f"{TOKEN}CSVNOTE"]
    caplog.clear()
    caplog.set_level(logging.DEBUG)

    scan = scan_folder(data)
    ts = build_training_set(scan.series, TrainingSetConfig(resolution=64, min_foreground=0.0),
                            labels=load_labels(scan))  # fmt: skip
    assert ts.labels is not None and ts.masks is not None and ts.masks.any()
    rng = np.random.default_rng(0)
    images = np.clip(ts.images[:, :, ::-1] + rng.normal(0, 0.1, ts.images.shape), -1, 1)
    generated = GeneratedSet(
        images.astype(np.float32), images.astype(np.float32), seed=2, indices=np.arange(len(images)),
        labels=np.maximum(ts.labels, 0), class_names=ts.class_names,
        masks=ts.masks[:, :, ::-1], segment_names=ts.segment_names,
    )  # fmt: skip
    request = GenerateRequest(
        model_path="", n=len(images), reference_images=ts.images, reference_keys=ts.patient_keys,
        reference_labels=ts.labels, reference_masks=ts.masks, reference_mask_known=ts.mask_known,
        class_names=ts.class_names, segment_names=ts.segment_names,
        fidelity=FidelityConfig(epochs=2), device="cpu",
    )  # fmt: skip
    scored = score_generated(generated, request)
    from medgan.curate.filters import FilterConfig

    decisions = curate(CurateRequest(n=len(images), scores=scored.scores, filters=FilterConfig(
        allow_memorized=True, drop_empty=False, drop_implausible_masks=False))).decisions  # fmt: skip
    outputs = []
    for fmt in (*LABELLED_FORMATS, "dicom"):
        out = tmp_path / "exports" / fmt
        config = ExportConfig(format=fmt, destination=str(out), include_real=True)
        export_curated(ExportRequest(scored, decisions, config))
        outputs.append(out)
    files = [p for out in outputs for p in out.rglob("*") if p.is_file()]
    assert any(p.name.endswith("_seg.dcm") for p in files) and any("real_" in p.name for p in files)
    for path in files:
        _assert_clean(str(path.relative_to(tmp_path)), _blobs(path), markers + uids)
    log_text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    _assert_clean("the log records", [log_text.encode()], markers + uids)


def test_no_marker_or_patient_key_reaches_the_utility_result(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``medgan utility`` on a marked, labelled study (4 patients, a "none" and a "lesion"
    series each): its JSON, plot, report, checkpoints, output and logs hold no marker, UID or
    hashed patient key."""
    from PIL import Image

    from medgan.core.privacy import hash_id

    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    rng = np.random.default_rng(11)
    data, rows, markers, uids, keys = tmp_path / "data", ["series_instance_uid,label"], [TOKEN], [], []
    for k in range(4):
        tags = _identifying_tags(k)
        pid, name = f"{TOKEN}UPID{k}", f"{TOKEN}UPN{k}^{TOKEN}G"
        markers += [pid, *(str(v) for v in tags.values() if TOKEN in str(v))]
        keys.append(hash_id(pid))
        for j, label in enumerate(("none", "lesion")):
            pixels = (rng.normal(0, 200, (3, 32, 32)) + 1064 + 300 * j).astype(np.int16)
            paths = write_series(
                data / f"p{k}s{j}", n=3, rows=32, cols=32, pixels=pixels, patient_name=name,
                patient_id=pid, series_description=f"{TOKEN}DESC{k}", extra_tags=tags, seed=10 * k + j,
            )  # fmt: skip
            ds = pydicom.dcmread(paths[0])
            rows.append(f"{ds.SeriesInstanceUID},{label}")
            uids += [ds.StudyInstanceUID, ds.SeriesInstanceUID]
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("\n".join(rows) + "\n")
    export = tmp_path / "export"  # class folders, no manifest: patients unknown
    for label, level in (("none", 60), ("lesion", 200)):
        (export / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((64, 64), level + i, np.uint8)).save(export / label / f"{i}.png")
    out, plot, ckpt = tmp_path / "utility.json", tmp_path / "utility.png", tmp_path / "ckpt"
    argv = ["-v", "utility", "--data", str(data), "--labels", str(labels_csv), "--synthetic",
            str(export), "--allow-unchecked", "--folds", "2", "--seeds", "1", "--steps", "2",
            "--batch", "4", "--device", "cpu", "--checkpoint", str(ckpt), "--out", str(out),
            "--plot", str(plot)]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert '"medgan-utility"' in out.read_text() and plot.stat().st_size > 0
    assert main(["report", str(out)]) == 0  # the utility report (HTML, embedded PNGs)
    report = tmp_path / "utility.report.html"
    files = [out, plot, report] + [p for p in ckpt.rglob("*") if p.is_file()]
    assert len(files) > 4  # state + per-run records
    captured = capsys.readouterr()
    assert "Verdict" in captured.out
    needles = markers + uids + keys
    for path in files:
        _assert_clean(str(path.relative_to(tmp_path)), _blobs(path), needles)
    (tmp_path / "scratch").mkdir()
    embedded = _embedded_png_blobs(report.read_bytes(), tmp_path / "scratch")
    assert embedded  # the report's figures, decompressed
    _assert_clean("the utility report's figures", embedded, needles)
    log_text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    _assert_clean("the utility logs", [log_text.encode()], needles)
    _assert_clean("the utility output", [captured.out.encode(), captured.err.encode()], needles)
