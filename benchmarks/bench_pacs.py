"""Retrieve 1,000 slices from a local Orthanc: C-GET and WADO-RS, ours against a naive loop.

Starts a throw-away Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``, as the tests do),
uploads the demo study (default 4 patients x 250 slices of 256², int16 CT), then times, in the
same run and each into an empty cache:

* naive C-GET: one association per instance (associate, C-GET one image, release), in a loop;
* ours C-GET: :func:`medgan.pacs.retrieve.retrieve_series` (batches of 50 instances per C-GET,
  ``--workers`` associations at once, and with 1);
* naive WADO-RS: a new HTTP session per instance, one WADO-RS instance request each;
* ours WADO-RS: one multipart stream per series (the default) and, as on a resume,
  per-instance requests over ``--workers`` keep-alive sessions in parallel.

Files/s count instances written to the cache (listing included for ours). The machine is
shared: the load average before and after is printed with the figures.

    .venv/bin/python benchmarks/bench_pacs.py                  # 1,000 slices
    .venv/bin/python benchmarks/bench_pacs.py --patients 1 --slices 100 --size 64   # quick
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgan.demo.study import write_demo_study  # noqa: E402
from medgan.pacs.cache import SeriesCache  # noqa: E402
from medgan.pacs.dicomweb import DicomWebClient  # noqa: E402
from medgan.pacs.dimse import DimseClient  # noqa: E402
from medgan.pacs.profiles import DicomWebSettings, DimseSettings, Profile  # noqa: E402
from medgan.pacs.records import FindQuery, SeriesRef  # noqa: E402
from medgan.pacs.retrieve import retrieve_series  # noqa: E402
from tests.orthanc import OrthancServer, start_orthanc  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def profiles(server: OrthancServer, workers: int) -> tuple[Profile, Profile]:
    dimse = Profile(
        "bench-dimse",
        "dimse",
        workers=workers,
        dimse=DimseSettings(
            host="127.0.0.1",
            port=server.dicom_port,
            called_aet=server.aet,
            calling_aet=server.move_aet,
            move_port=server.move_port,
            timeout_s=60,
        ),
    )
    web = Profile(
        "bench-web",
        "dicomweb",
        workers=workers,
        dicomweb=DicomWebSettings(
            url=server.dicomweb_url, auth="basic", username=server.user, timeout_s=60
        ),
    )
    return dimse, web


def naive(make_client: Callable[[], object], refs: list[SeriesRef], root: Path, name: str) -> int:
    """One instance at a time, a new association / HTTP session for each."""
    lister = make_client()
    count = 0
    for ref in refs:
        cache = SeriesCache(root, name, ref)
        cache.start()
        for uid in lister.list_instances(ref):  # type: ignore[attr-defined]
            client = make_client()
            client.fetch(ref, [uid], cache.write)  # type: ignore[attr-defined]
            close = getattr(client, "close", None)
            if close:
                close()
            count += 1
    return count


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--patients", type=int, default=4)
    p.add_argument("--slices", type=int, default=250)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--json", help="write the figures here")
    p.add_argument(
        "--nagle",
        action="store_true",
        help="run Orthanc as packaged (DCMTK's Nagle on; default: TCP_NODELAY=1)",
    )
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pacs-"))
    os.environ["MEDGAN_PACS_CACHE"] = str(work / "cache")
    load_before = os.getloadavg()
    server = start_orthanc(work / "orthanc", nodelay=not args.nagle)
    try:
        t0 = time.perf_counter()
        demo = write_demo_study(
            work / "demo", n_patients=args.patients, slices_per_patient=args.slices, size=args.size
        )
        files = sorted(demo.rglob("IM*.dcm"))
        server.upload(files)
        print(
            f"Demo study: {len(files)} slices of {args.size}² written and uploaded in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        dimse, web = profiles(server, args.workers)
        hits = DimseClient(dimse).find(FindQuery(level="series", modality="CT", limit=1000)).hits
        refs = [SeriesRef(h.study_uid, h.series_uid) for h in hits]
        n = sum(h.n_instances or 0 for h in hits)

        def one(prof: Profile) -> Profile:
            return dataclasses.replace(prof, workers=1)

        runs: list[tuple[str, Callable[[Path], int]]] = [
            (
                "C-GET naive (association per instance)",
                lambda r: naive(lambda: DimseClient(dimse), refs, r, "naive-dimse"),
            ),
            ("C-GET ours, 1 association at a time", lambda r: _ours(one(dimse), refs, r)),
            (f"C-GET ours, {args.workers} associations", lambda r: _ours(dimse, refs, r)),
            (
                "WADO-RS naive (session per instance)",
                lambda r: naive(lambda: DicomWebClient(web, server.password), refs, r, "naive-web"),
            ),
            (
                "WADO-RS ours (default), 1 stream per series",
                lambda r: _ours(web, refs, r, server.password),
            ),
            (
                f"WADO-RS ours per instance, {args.workers} sessions",
                lambda r: _ours(web, refs, r, server.password, stream=False),
            ),
        ]
        results = []
        for label, run in runs:
            root = work / "cache" / label.split()[0].lower() / str(len(results))
            root.mkdir(parents=True)
            t = time.perf_counter()
            got = run(root)
            seconds = time.perf_counter() - t
            assert got == n, f"{label}: {got} of {n} files"
            results.append(
                {
                    "method": label,
                    "files": got,
                    "seconds": round(seconds, 2),
                    "files_per_s": round(got / seconds, 1),
                }
            )
            print(f"{label:42s} {got} files in {seconds:6.2f} s = {got / seconds:7.1f} files/s")
            shutil.rmtree(root)
    finally:
        server.stop()
    load_after = os.getloadavg()
    for proto, base in (("C-GET", 0), ("WADO-RS", 3)):
        naive_rate = results[base]["files_per_s"]
        for r in results[base + 1 : base + 3]:
            r["vs_naive"] = round(r["files_per_s"] / naive_rate, 2)
            print(f"{proto}: {r['method']} is {r['vs_naive']}x the naive loop")
    machine = f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"Orthanc TCP_NODELAY={'0 (as packaged)' if args.nagle else '1'}")
    print(
        f"Machine: {machine}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "slices": n,
                    "size": args.size,
                    "workers": args.workers,
                    "machine": machine,
                    "orthanc_tcp_nodelay": not args.nagle,
                    "load_before": load_before,
                    "load_after": load_after,
                    "results": results,
                },
                indent=2,
            )
        )
    shutil.rmtree(work, ignore_errors=True)


def _ours(
    profile: Profile,
    refs: list[SeriesRef],
    root: Path,
    secret: str | None = None,
    stream: bool | None = None,
) -> int:
    outcome = retrieve_series(profile, refs, secret=secret, root=root, stream=stream)
    return outcome.fetched


if __name__ == "__main__":
    main()
