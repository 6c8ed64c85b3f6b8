"""``medgan pacs profile|echo|find|get|send``: PACS access from the command line.

Profiles are saved in the user's config; passwords and tokens go to the OS keyring, read from
a prompt, an environment variable (``--secret-env NAME``) or standard input
(``--secret-stdin``), never from the command line. ``find`` shows patients as hashed ids
unless ``--show-names``; ``get`` retrieves into the private cache and prints the folder to
open or train on; ``send`` pushes a synthetic DICOM export back.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import threading
from typing import Any

from medgan.core.errors import Cancelled
from medgan.core.privacy import hash_id
from medgan.pacs.profiles import (
    DicomWebSettings,
    DimseSettings,
    Profile,
    delete_profile,
    load_profiles,
)
from medgan.pacs.records import FindQuery, Hit, PacsError, SeriesRef
from medgan.pacs.secrets import ENV_SECRET, delete_secret
from medgan.workflows import pacs as flows


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pacs",
        help="search, retrieve from and send to a PACS (DIMSE or DICOMweb)",
        description="Search a PACS, retrieve series into a private cache, send synthetic series back.",
    )
    sub = parser.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    prof = sub.add_parser("profile", help="add, list or remove server profiles")
    psub = prof.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    add = psub.add_parser("add", help="add or replace a profile")
    add.add_argument("name")
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--dicomweb", metavar="URL", help="DICOMweb base URL")
    kind.add_argument("--dimse", metavar="HOST:PORT", help="DIMSE server address")
    add.add_argument("--qido-prefix", default="")
    add.add_argument("--wado-prefix", default="")
    add.add_argument("--stow-prefix", default="")
    add.add_argument("--auth", choices=("none", "basic", "bearer"), default="none")
    add.add_argument("--username", default="")
    add.add_argument("--ca-bundle", default="", help="PEM file of trusted CA certificates")
    add.add_argument("--no-verify", action="store_true", help="do not verify TLS (unsafe)")
    add.add_argument("--called-aet", default="ANY-SCP", help="the server's AE title")
    add.add_argument("--calling-aet", default="MEDGAN", help="our AE title")
    add.add_argument("--tls", action="store_true", help="DIMSE over TLS")
    add.add_argument("--retrieve", choices=("get", "move"), default="get")
    add.add_argument("--move-port", type=int, default=11113, help="our storage SCP port (C-MOVE)")
    add.add_argument("--workers", type=int, default=4, help="parallel transfers")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--secret-env", metavar="VAR", help="read the password/token from $VAR")
    secret.add_argument("--secret-stdin", action="store_true", help="read it from standard input")
    secret.add_argument(
        "--no-keyring",
        action="store_true",
        help=f"store no secret: give it in ${ENV_SECRET} whenever the profile is used",
    )
    add.set_defaults(func=run_profile_add)
    lst = psub.add_parser("list", help="list the saved profiles (no secrets)")
    lst.set_defaults(func=run_profile_list)
    rm = psub.add_parser("remove", help="remove a profile and its secret")
    rm.add_argument("name")
    rm.set_defaults(func=run_profile_remove)

    echo = sub.add_parser("echo", help="test the connection (C-ECHO or a QIDO-RS ping)")
    echo.add_argument("profile")
    echo.set_defaults(func=run_echo)

    find = sub.add_parser("find", help="search studies or series")
    find.add_argument("profile")
    find.add_argument("--level", choices=("study", "series"), default="study")
    for flag in ("patient-id", "patient-name", "accession", "modality", "description"):
        find.add_argument(f"--{flag}", default="")
    find.add_argument("--date-from", default="", metavar="YYYYMMDD")
    find.add_argument("--date-to", default="", metavar="YYYYMMDD")
    find.add_argument("--study", default="", metavar="UID", help="series of this study")
    find.add_argument("--offset", type=int, default=0)
    find.add_argument("--limit", type=int, default=50)
    find.add_argument(
        "--show-names", action="store_true", help="show names, IDs, dates (identifying!)"
    )
    find.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    find.set_defaults(func=run_find)

    get = sub.add_parser("get", help="retrieve series into the private cache")
    get.add_argument("profile")
    get.add_argument("--series", action="append", default=[], metavar="UID")
    get.add_argument(
        "--study", action="append", default=[], metavar="UID", help="every series of a study"
    )
    get.add_argument("--workers", type=int, default=None)
    get.add_argument("--quiet", action="store_true")
    get.set_defaults(func=run_get)

    send = sub.add_parser("send", help="send a synthetic DICOM export (C-STORE or STOW-RS)")
    send.add_argument("profile")
    send.add_argument("folder")
    send.add_argument("--quiet", action="store_true")
    send.set_defaults(func=run_send)


def _read_secret(args: argparse.Namespace, profile: Profile) -> str | None:
    if not profile.needs_secret or args.no_keyring:
        return None
    if args.secret_env:
        value = os.environ.get(args.secret_env, "")
        if not value:
            raise PacsError(f"${args.secret_env} is empty or not set.", advice="Export it first.")
        return value
    if args.secret_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise PacsError("No secret on standard input.", advice="Pipe the password in.")
        return value
    if not sys.stdin.isatty():
        raise PacsError(
            "A password or token is needed and there is no terminal to ask for it.",
            advice="Use --secret-env VAR or --secret-stdin.",
        )
    return getpass.getpass(
        f"{'Password' if profile.dicomweb.auth == 'basic' else 'Token'} for {profile.server}: "
    )


def run_profile_add(args: argparse.Namespace) -> int:
    if args.dicomweb:
        profile = Profile(
            name=args.name,
            kind="dicomweb",
            workers=args.workers,
            dicomweb=DicomWebSettings(
                url=args.dicomweb,
                qido_prefix=args.qido_prefix,
                wado_prefix=args.wado_prefix,
                stow_prefix=args.stow_prefix,
                auth=args.auth,
                username=args.username,
                verify_tls=not args.no_verify,
                ca_bundle=args.ca_bundle,
            ),
        )
    else:
        host, _, port = args.dimse.rpartition(":")
        if not host or not port.isdigit():
            raise PacsError(
                f"{args.dimse!r} is not HOST:PORT.", advice="Write it like pacs.local:104."
            )
        profile = Profile(
            name=args.name,
            kind="dimse",
            workers=args.workers,
            dimse=DimseSettings(
                host=host,
                port=int(port),
                called_aet=args.called_aet,
                calling_aet=args.calling_aet,
                tls=args.tls,
                ca_bundle=args.ca_bundle,
                retrieve=args.retrieve,
                move_port=args.move_port,
            ),
        )
    flows.add_profile(profile, _read_secret(args, profile), use_keyring=not args.no_keyring)
    where = (
        f"; give its secret in ${ENV_SECRET}" if args.no_keyring and profile.needs_secret else ""
    )
    print(f"Profile {profile.server} saved{where}.")
    return 0


def run_profile_list(args: argparse.Namespace) -> int:
    profiles = load_profiles()
    if not profiles:
        print("No PACS profiles yet: add one with 'medgan pacs profile add'.")
    for p in profiles.values():
        extra = (
            f" auth {p.dicomweb.auth}" if p.kind == "dicomweb" else f" retrieve {p.dimse.retrieve}"
        )
        print(f"{p.name:16} {p.kind:8} {p.server}{extra}")
    return 0


def run_profile_remove(args: argparse.Namespace) -> int:
    delete_secret(args.name)
    delete_profile(args.name)
    print(f"Profile '{args.name}' removed.")
    return 0


def run_echo(args: argparse.Namespace) -> int:
    print(flows.check_connection(args.profile))
    return 0


def _hit_row(hit: Hit, show_names: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "level": hit.level,
        "study_uid": hit.study_uid,
        "series_uid": hit.series_uid,
        "patient": hit.patient_name if show_names else hash_id(hit.patient_id),
        "modality": hit.modality,
        "description": hit.description if show_names else "",
        "series": hit.n_series,
        "instances": hit.n_instances,
    }
    if show_names:
        row.update(patient_id=hit.patient_id, study_date=hit.study_date, accession=hit.accession)
    return row


def run_find(args: argparse.Namespace) -> int:
    query = FindQuery(
        level=args.level,
        patient_id=args.patient_id,
        patient_name=args.patient_name,
        accession=args.accession,
        date_from=args.date_from,
        date_to=args.date_to,
        modality=args.modality,
        description=args.description,
        study_uid=args.study,
        offset=args.offset,
        limit=args.limit,
    )
    page = flows.search(args.profile, query)
    rows = [_hit_row(h, args.show_names) for h in page.hits]
    if args.json:
        json.dump(
            {"hits": rows, "offset": page.offset, "has_more": page.has_more}, sys.stdout, indent=2
        )
        sys.stdout.write("\n")
        return 0
    for r in rows:
        counts = f"{r['instances'] or '?'} images" + (
            f", {r['series']} series" if r["series"] else ""
        )
        who = r["patient"] + (f" {r['patient_id']} {r['study_date']}" if args.show_names else "")
        uid = r["series_uid"] or r["study_uid"]
        desc = f" {r['description']}" if r["description"] else ""
        print(f"{who}  {r['modality'] or '-':4} {counts}{desc}\n    {args.level} {uid}")
    more = f"; more after this page: --offset {page.offset + len(rows)}" if page.has_more else ""
    print(f"{len(rows)} {args.level}-level hit{'' if len(rows) == 1 else 's'} shown{more}.")
    return 0


def _refs(args: argparse.Namespace) -> list[SeriesRef]:
    refs: list[SeriesRef] = []
    for uid in args.series:
        page = flows.search(args.profile, FindQuery(level="series", series_uid=uid, limit=2))
        if not page.hits:
            raise PacsError(
                f"The server has no series {uid}.", advice="Check the UID with 'medgan pacs find'."
            )
        refs.append(SeriesRef(page.hits[0].study_uid, uid))
    for study in args.study:
        offset = 0
        while True:
            page = flows.search(
                args.profile, FindQuery(level="series", study_uid=study, offset=offset, limit=200)
            )
            refs += [SeriesRef(study, h.series_uid) for h in page.hits]
            offset += len(page.hits)
            if not page.has_more:
                break
    if not refs:
        raise PacsError("Nothing to retrieve.", advice="Give --series UID or --study UID.")
    return refs


def run_get(args: argparse.Namespace) -> int:
    from medgan.cli.progress import CountProgress

    refs = _refs(args)
    bar = None if args.quiet else CountProgress("Retrieving", sys.stderr, unit="files")
    cancel = threading.Event()
    try:
        outcome = flows.retrieve(
            flows.RetrieveRequest(args.profile, refs, workers=args.workers),
            progress=(lambda _s, d, t: bar(d, t)) if bar else None,
            cancel=cancel,
        )
    except KeyboardInterrupt:
        cancel.set()
        raise Cancelled("Retrieve interrupted; run the same command again to resume.") from None
    finally:
        if bar:
            bar.close()
    rate = outcome.fetched / outcome.seconds if outcome.seconds > 0 else 0.0
    print(
        f"{len(outcome.folders)} series ready ({outcome.fetched} files fetched, "
        f"{outcome.reused} already cached, {rate:.0f} files/s)."
    )
    for folder in outcome.folders:
        print(folder)
    return 0


def run_send(args: argparse.Namespace) -> int:
    from medgan.cli.progress import CountProgress

    bar = None if args.quiet else CountProgress("Sending", sys.stderr, unit="files")
    try:
        outcome = flows.send_export(
            flows.SendRequest(args.profile, args.folder),
            progress=(lambda _s, d, t: bar(d, t)) if bar else None,
        )
    finally:
        if bar:
            bar.close()
    print(f"{outcome.sent} files sent, {len(outcome.failed)} failed.")
    for name, reason in outcome.failed:
        print(f"  {name}: {reason}", file=sys.stderr)
    return 0 if outcome.ok else 1
