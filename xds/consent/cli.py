"""``xds consent``: record and read a patient's consent directives on a DIR node's database.

    xds consent withdraw  --config conf/hdirs.toml --patient 9876543210 --by "J. Smith, privacy office" \\
                          [--document UNIQUE_ID ...] [--study STUDY_INSTANCE_UID ...] [--reason TEXT]
    xds consent reinstate --config conf/hdirs.toml --patient 9876543210 --by ... [--document ...] [--study ...]
    xds consent show      --config conf/hdirs.toml --patient 9876543210 [--history] [--json]

``--patient`` is the HN alone (the node's ``registry.patient_assigning_authority`` completes it) or
the affinity-domain CX ``<hn>^^^&<oid>&ISO``. Without ``--document``/``--study`` a directive covers
all of the patient's documents. A target the registry does not know for the patient is recorded
all the same (a directive may come before the documents) with a warning. Each change is audited
in the node's ATNA trail when ``[audit]`` is enabled. Exit status: 0 done, 1 refused (the message
says why), 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from xds import config as config_mod


def add_parser(sub: Any) -> None:
    """The ``consent`` command under ``xds`` (``sub``: the top-level subparsers)."""
    consent = sub.add_parser("consent", help="patients' consent directives: withdraw, reinstate, show")
    commands = consent.add_subparsers(dest="consent_command", required=True)
    for name, text in (
        ("withdraw", "withdraw consent to share all of a patient's documents, or the ones named"),
        ("reinstate", "reinstate consent: entirely, or for the documents / studies named"),
        ("show", "a patient's active withdrawals (--history: every directive)"),
    ):
        p = commands.add_parser(name, help=text)
        p.add_argument("--config", required=True, help="node configuration (TOML): its database")
        p.add_argument("--data-dir", help="the node's data directory (as for serve)")
        p.add_argument("--patient", required=True, help="HN, or the affinity-domain CX hn^^^&OID&ISO")
        if name == "show":
            p.add_argument("--history", action="store_true", help="every directive, superseded ones too")
            p.add_argument("--json", action="store_true", help="JSON instead of a table")
        else:
            p.add_argument("--by", required=True, help="who records the directive (name, role)")
            p.add_argument("--reason", default="", help="why (the patient's request, its reference)")
            p.add_argument(
                "--document",
                action="append",
                default=[],
                metavar="UNIQUE_ID",
                help="a document's uniqueId (repeatable)",
            )
            p.add_argument(
                "--study",
                action="append",
                default=[],
                metavar="STUDY_INSTANCE_UID",
                help="an imaging study's Study Instance UID (repeatable)",
            )
        p.set_defaults(func=run)


def patient_cx(value: str, authority: str) -> str:
    """The affinity-domain CX of ``value``: taken as it is when it is a CX, else an HN completed with
    ``authority``. Raises ValueError when neither works."""
    value = value.strip()
    if "^" in value:
        return value
    if not value:
        raise ValueError("--patient is empty")
    if not authority:
        raise ValueError(
            "registry.patient_assigning_authority is not configured: give the whole CX hn^^^&OID&ISO"
        )
    return f"{value}^^^&{authority}&ISO"


def run(args: argparse.Namespace) -> int:
    from xds.consent.directives import ConsentDirectives, ConsentError
    from xds.registry.db import create_registry_engine, migrate

    try:
        cfg = config_mod.load(args.config, args.data_dir)
        patient = patient_cx(args.patient, cfg.registry.patient_assigning_authority)
    except (config_mod.ConfigError, ValueError) as e:
        print(f"xds: {e}", file=sys.stderr)
        return 2
    engine = create_registry_engine(cfg.database_url, pool_size=2)
    trail = None
    try:
        migrate(engine)
        if args.consent_command == "show":
            return _show(ConsentDirectives(engine), patient, args)
        sinks = []
        if cfg.audit.enabled:
            from xds.audit.trail import AuditTrail
            from xds.consent.audit import atna_sink

            trail = AuditTrail.from_config(cfg)
            sinks.append(atna_sink(trail, application=f"xds consent ({cfg.name})"))
        directives = ConsentDirectives(engine, audit_sinks=sinks)
        for warning in _unknown_targets(engine, patient, args.document, args.study):
            print(f"xds: warning: {warning}", file=sys.stderr)
        change = directives.withdraw if args.consent_command == "withdraw" else directives.reinstate
        try:
            recorded = change(
                patient, documents=args.document, studies=args.study, set_by=args.by, reason=args.reason
            )
        except ConsentError as e:
            print(f"xds: {e}", file=sys.stderr)
            return 1
        for d in recorded:
            print(f"{d.id}\t{d.action}\t{d.scope}\t{d.target or '-'}\t{d.set_at.isoformat()}")
        return 0
    finally:
        if trail is not None:
            trail.close()
        engine.dispose()


def _show(directives: Any, patient: str, args: argparse.Namespace) -> int:
    rows = directives.history(patient) if args.history else directives.active(patient)
    if args.json:
        out = [
            {
                **d.__dict__,
                "set_at": d.set_at.isoformat(),
                "superseded_at": d.superseded_at.isoformat() if d.superseded_at else None,
            }
            for d in rows
        ]
        print(json.dumps(out, indent=1))
        return 0
    if not rows:
        print(f"{patient}: no {'directives' if args.history else 'active withdrawal: consent stands'}")
        return 0
    columns = ("id", "action", "scope", "target", "set_at", "set_by", "reason", "superseded_by")
    print("\t".join(columns))
    for d in rows:
        print("\t".join("-" if getattr(d, c) in (None, "") else str(getattr(d, c)) for c in columns))
    return 0


def _unknown_targets(engine: Any, patient: str, documents: list[str], studies: list[str]) -> list[str]:
    """Warnings for a patient, document or study the registry does not know for this patient."""
    from sqlalchemy import select

    from xds.metadata.model import REF_STUDY_INSTANCE_UID
    from xds.registry import schema as s

    de, ref = s.document_entry, s.document_reference_id
    out = []
    with engine.connect() as conn:
        if (
            conn.execute(select(s.patient.c.patient_id).where(s.patient.c.patient_id == patient)).first()
            is None
        ):
            out.append(f"the registry does not know patient {patient} (recorded all the same)")
        if documents:
            known = set(
                conn.scalars(
                    select(de.c.unique_id).where(de.c.patient_id == patient, de.c.unique_id.in_(documents))
                )
            )
            out += [
                f"no document {u} of this patient in the registry (recorded all the same)"
                for u in documents
                if u not in known
            ]
        if studies:
            known = set(
                conn.scalars(
                    select(ref.c.id)
                    .join(de, de.c.entry_uuid == ref.c.entry_uuid)
                    .where(
                        de.c.patient_id == patient,
                        ref.c.id_type == REF_STUDY_INSTANCE_UID,
                        ref.c.id.in_(studies),
                    )
                )
            )
            out += [
                f"no manifest of study {u} for this patient in the registry (recorded all the same)"
                for u in studies
                if u not in known
            ]
    return out
