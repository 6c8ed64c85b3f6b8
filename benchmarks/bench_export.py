"""Generate, score and export N synthetic slices (default 10,000 at 128x128): slices/s per stage.

Each export stage is compared, in the same run, with a naive baseline written the obvious
way: PNG = one ``PIL.Image.save`` per slice at Pillow's default compression with the window
computed per slice; DICOM = a complete dataset built per file (by hand with pydicom, and with
highdicom's ``SCImage``), then saved. Baselines run on ``--baseline-n`` slices (their rate is
per slice, so the ratio is fair) and write no manifest and no fsync, so they flatter the
baseline. Our exports are complete: manifest, README, fsync of every file, atomic rename.

The generator is the ``default`` recipe at ``--res``, untrained (weights re-drawn so samples
differ); throughput does not depend on training. Usage::

    .venv/bin/python benchmarks/bench_export.py [--n 10000] [--res 128] [--train 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.platform()} | {cpu} | {os.cpu_count()} CPUs | torch {torch.__version__} "
        f"({torch.get_num_threads()} threads) | load average {load:.1f} at start"
    )


def make_model(folder: Path, res: int) -> Path:
    import torch

    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models("default", res)
    with torch.no_grad():
        for param in g.parameters():
            param.normal_(0.0, 0.05)
    meta = ModelMetadata(recipe="default", resolution=res, window=(40.0, 400.0), modality="CT",
                         pixel_spacing=(1.0, 1.0))  # fmt: skip
    return save_model(folder / "bench.safetensors",
                      {"generator": g.state_dict(), "discriminator": d.state_dict()}, meta)  # fmt: skip


def training_slices(m: int, res: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random 'anatomy' in [-1, 1] from 10 pseudo-patients (content does not matter)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    base = gaussian_filter(rng.normal(size=(m, res, res)).astype(np.float32), sigma=(0, 4, 4))
    base /= np.abs(base).max() + 1e-6
    keys = np.array([f"patient{i % 10}" for i in range(m)])
    return base.astype(np.float32), keys


def naive_png(images: np.ndarray, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        lo, hi = -160.0, 240.0  # window from HU each time
        hu = img * 200.0 + 40.0
        u8 = (np.clip((hu - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)
        Image.fromarray(u8).save(folder / f"slice_{i:06d}.png")


def naive_dicom_pydicom(modality: np.ndarray, folder: Path) -> None:
    """A complete Secondary Capture dataset built by hand for every file."""
    import datetime

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    for i, hu in enumerate(modality):
        now = datetime.datetime.now()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        uid = generate_uid()
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID = "SYNTHETIC^MEDGAN", "SYNTH0001"
        ds.PatientBirthDate = ds.PatientSex = ds.AccessionNumber = ds.ReferringPhysicianName = ""
        ds.StudyDate, ds.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "MEDGAN", 1, i + 1
        ds.Modality, ds.ConversionType, ds.Manufacturer = "CT", "DI", "MedGAN Studio"
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.SeriesDescription = ds.ImageComments = "SYNTHETIC"
        ds.BurnedInAnnotation, ds.PatientOrientation, ds.Laterality = "NO", None, None
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = hu.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -32768, 1, "HU"
        ds.PixelData = np.clip(np.rint(hu + 32768), 0, 65535).astype(np.uint16).tobytes()
        ds.save_as(folder / f"slice_{i:06d}.dcm", enforce_file_format=True)


def naive_dicom_highdicom(modality: np.ndarray, folder: Path) -> None:
    """highdicom's SCImage constructed (and validated) for every file."""
    import highdicom as hd
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    for i, hu in enumerate(modality):
        ds = hd.sc.SCImage(
            pixel_array=np.clip(np.rint(hu + 32768), 0, 65535).astype(np.uint16),
            photometric_interpretation="MONOCHROME2", bits_allocated=16,
            coordinate_system="PATIENT", study_instance_uid=study, series_instance_uid=series,
            series_number=1, sop_instance_uid=generate_uid(), instance_number=i + 1,
            manufacturer="MedGAN Studio", patient_id="SYNTH0001", patient_name="SYNTHETIC^MEDGAN",
            patient_orientation=("L", "P"),
        )  # fmt: skip
        ds.save_as(folder / f"slice_{i:06d}.dcm")


def timed(label: str, fn, n: int, results: dict) -> object:  # noqa: ANN001
    start = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - start
    results[label] = {"n": n, "seconds": round(seconds, 3), "slices_per_s": round(n / seconds, 1)}
    print(
        f"{label:<34} {n:>6} slices in {seconds:8.2f} s = {n / seconds:9.1f} slices/s", flush=True
    )
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--res", type=int, default=128)
    parser.add_argument("--train", type=int, default=1000, help="training slices to score against")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--baseline-n", type=int, default=2000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--tmp", help="scratch folder (default: system temp)")
    args = parser.parse_args()

    from medgan.curate.score import score_samples
    from medgan.export import ExportConfig, export_set, provenance_from_model, synthetic_from_engine
    from medgan.generate.sampling import generate, load_generator
    from medgan.models.modelfile import load_model

    info = machine()
    print(f"machine: {info}\ndevice: {args.device}", flush=True)
    results: dict = {"machine": info, "args": vars(args)}
    scratch = Path(tempfile.mkdtemp(prefix="medgan-bench-", dir=args.tmp))
    try:
        model_path = make_model(scratch, args.res)
        loaded = load_model(model_path)
        generator = load_generator(loaded, device=args.device)
        results["device"] = generator.device
        generate(generator, min(args.batch, 8), seed=99, batch_size=args.batch)  # warm-up
        gen = timed("generate", lambda: generate(generator, args.n, seed=0, batch_size=args.batch),
                    args.n, results)  # fmt: skip
        train, keys = training_slices(args.train, args.res)
        scores = timed(
            f"score (vs {args.train} training slices)",
            lambda: score_samples(gen.images, train, training_patient_keys=keys,
                                  discriminator=loaded, device=args.device),
            args.n, results,
        )  # fmt: skip
        synthetic = synthetic_from_engine(gen, scores)
        provenance = provenance_from_model(model_path, loaded.metadata, seed=0)
        nb = min(args.baseline_n, args.n)
        for fmt, baselines in (
            ("png", {"naive PIL save loop": naive_png}),
            ("dicom", {"naive pydicom per file": naive_dicom_pydicom,
                       "naive highdicom per file": naive_dicom_highdicom}),
        ):  # fmt: skip
            warm = ExportConfig(format=fmt, destination=str(scratch / f"warm-{fmt}"))
            export_set(synthetic_from_engine(generate(generator, 2, seed=98)), warm, provenance)
            out = scratch / f"export-{fmt}"  # (warm-up above: one-time library set-up)
            config = ExportConfig(format=fmt, destination=str(out))
            timed(f"export {fmt} (ours)", lambda c=config: export_set(synthetic, c, provenance),
                  args.n, results)  # fmt: skip
            shutil.rmtree(out)
            for label, fn in baselines.items():
                folder = scratch / label.replace(" ", "-")
                data = gen.images[:nb] if fmt == "png" else gen.modality[:nb]
                timed(f"{fmt}: {label}", lambda f=fn, d=data, o=folder: f(d, o), nb, results)
                shutil.rmtree(folder)
                ratio = (results[f"export {fmt} (ours)"]["slices_per_s"]
                         / results[f"{fmt}: {label}"]["slices_per_s"])  # fmt: skip
                results[f"{fmt}: ratio vs {label}"] = round(ratio, 2)
                print(f"  ratio ours / {label}: {ratio:.2f}x", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
