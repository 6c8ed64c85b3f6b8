"""DICOM export: valid Secondary Capture judged by dcmtk and dicom3tools, no identifiers,
fresh UIDs for every export."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from medgan.export import ExportConfig, export_set
from tests.core._export_data import provenance, real, synthetic

SC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
IDENTIFYING_EMPTY_OR_ABSENT = (
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "ReferringPhysicianName",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "PerformingPhysicianName",
    "OperatorsName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "DeviceSerialNumber",
    "AcquisitionDate",
    "SeriesDate",
    "PatientAge",
    "PatientWeight",
    "ReferencedSOPInstanceUID",
)


def _export(folder: Path, **cfg: object) -> list[Path]:
    config = ExportConfig(format="dicom", destination=str(folder), include_real=True, **cfg)  # type: ignore[arg-type]
    export_set(synthetic(3), config, provenance(), real=real(2), durable=False)
    return sorted(folder.glob("*.dcm"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _export(tmp_path_factory.mktemp("dicom") / "export")


def _all_elements(ds: Dataset):  # noqa: ANN202 - generator of DataElements
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _all_elements(item)


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk's dcmdump is not installed")
def test_dcmdump_reports_no_errors(exported: list[Path]) -> None:
    assert len(exported) == 5
    for path in exported:
        proc = subprocess.run(["dcmdump", "+E", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "E:" not in proc.stderr and "error" not in proc.stderr.lower(), proc.stderr


@pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed"
)
def test_dciodvfy_reports_no_errors(exported: list[Path]) -> None:
    for path in exported:
        proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        report = proc.stdout + proc.stderr
        assert "SCImage" in report  # it recognised the IOD
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert errors == [], "\n".join(errors)


def test_synthetic_marking_and_sc_attributes(exported: list[Path]) -> None:
    synth = [p for p in exported if p.name.startswith("synthetic")]
    for path in synth:
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == SC_IMAGE_STORAGE
        assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert "SYNTHETIC" in ds.SeriesDescription and "seed 11" in ds.SeriesDescription
        assert "SYNTHETIC" in ds.ImageComments and "seed 11" in ds.ImageComments
        assert "0123456789abcdef" in ds.ImageComments  # the model hash
        assert ds.BurnedInAnnotation == "NO"
        assert ds.PatientName == "SYNTHETIC^MEDGAN" and ds.PatientID == "SYNTH0001"
        assert ds.Modality == "CT" and float(ds.WindowWidth) == 400.0


def test_no_identifying_or_private_attributes(exported: list[Path]) -> None:
    for path in exported:
        ds = pydicom.dcmread(path)
        for keyword in IDENTIFYING_EMPTY_OR_ABSENT:
            assert not ds.get(keyword), f"{path.name}: {keyword} = {ds.get(keyword)!r}"
        assert not [e.tag for e in _all_elements(ds) if e.tag.is_private]


def test_configurable_synthetic_identity(tmp_path: Path) -> None:
    files = _export(tmp_path / "x", patient_name="AUGMENT^SET", patient_id="AUG42")
    ds = pydicom.dcmread(files[0])
    assert ds.PatientName == "AUGMENT^SET" and ds.PatientID == "AUG42"


def _uids(group: list[Dataset]) -> set[str]:
    return {
        u for ds in group for u in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    }


def test_fresh_uids_per_export(exported: list[Path], tmp_path: Path) -> None:
    first = [pydicom.dcmread(p) for p in exported]
    second = [pydicom.dcmread(p) for p in _export(tmp_path / "again")]
    for group in (first, second):
        assert len({ds.StudyInstanceUID for ds in group}) == 1  # one study per export
        assert len({ds.SOPInstanceUID for ds in group}) == len(group)
        series = {ds.SeriesInstanceUID for ds in group}
        assert len(series) == 2  # synthetic and real in separate series
    assert not _uids(first) & _uids(second)
    for ds in first:
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
