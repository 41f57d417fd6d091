"""The ``xds`` command: run a DIR node and its maintenance tasks."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys

from xds import config as config_mod


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    try:
        cfg = config_mod.load(args.config, args.data_dir)
    except config_mod.ConfigError as e:
        print(f"xds: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, cfg.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    workers = args.workers or cfg.http.workers
    if workers > 1:
        os.environ["XDS_CONFIG"] = os.path.abspath(args.config)
        if args.data_dir:
            os.environ["XDS_DATA_DIR"] = os.path.abspath(args.data_dir)
        # Create the schema once before the workers start, then run the MLLP and DICOM listeners
        # once, in their own process; the HTTP workers only serve HTTP.
        from xds.node import build_node

        build_node(cfg)
        os.environ["XDS_LISTENERS"] = "0"
        listeners = multiprocessing.get_context("spawn").Process(
            target=_run_listeners, args=(os.path.abspath(args.config), args.data_dir), name="xds-listeners"
        )
        listeners.start()
        try:
            uvicorn.run("xds.node:app_from_env", factory=True, host=cfg.http.host, port=cfg.http.port,
                        workers=workers, log_level="warning", access_log=False, **_tls_options(cfg))
        finally:
            listeners.terminate()
            listeners.join(15)
        return 0
    from xds.node import build_node

    node = build_node(cfg)
    print(f"{cfg.name}: serving on {cfg.base_url} (data in {os.path.abspath(cfg.data_dir)})", flush=True)
    uvicorn.run(node.app, host=cfg.http.host, port=cfg.http.port, log_level="warning", access_log=False,
                **_tls_options(cfg))
    return 0


def _run_listeners(config_path: str, data_dir: str | None) -> None:
    """The node's MLLP and DICOM listeners (and their background work) in a process of their own."""
    import asyncio
    import signal

    from xds.node import build_node

    cfg = config_mod.load(config_path, data_dir)
    logging.basicConfig(level=getattr(logging, cfg.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    node = build_node(cfg)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await node.start_listeners()
        try:
            await stop.wait()
        finally:
            await node.stop_listeners()

    asyncio.run(main())


def _tls_options(cfg: config_mod.NodeConfig) -> dict:
    """HTTPS: the node terminates TLS in its own uvicorn protocol class, so that a refused client
    certificate is audited (xds.security.tls), on the same loop as plain HTTP (uvloop when
    installed: its TLS protocol is the one the handshake and the records go through);
    X-Forwarded-For is then never trusted."""
    if not cfg.tls.enabled:
        return {}
    return {"http": "xds.security.tls:TlsHttpProtocol", "proxy_headers": False}


def _check_config(args: argparse.Namespace) -> int:
    try:
        config_mod.load(args.config)
    except config_mod.ConfigError as e:
        print(f"xds: {e}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK")
    return 0


def _certs_init(args: argparse.Namespace) -> int:
    from xds.security import pki

    written = pki.init_dev_pki(
        args.dir,
        hosts=args.host or pki.DEFAULT_HOSTS,
        node=args.node,
        clients=args.client or ["client"],
        days=args.days,
        key_kind=args.key_type,
        force=args.force,
    )
    for path in written:
        print(path)
    if not written:
        print(f"{args.dir}: the certificates exist already (--force replaces the CA and all of them)")
    print("development certificates only: see certs/README.md for a real CA", file=sys.stderr)
    return 0


def _bulk_load(args: argparse.Namespace) -> int:
    from xds.registry import Registry
    from xds.registry.bulk_load import BulkLoader, file_submissions

    try:
        cfg = config_mod.load(args.config, args.data_dir)
    except config_mod.ConfigError as e:
        print(f"xds: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = Registry.from_config(cfg)

    def progress(report) -> None:  # type: ignore[no-untyped-def]
        if not args.quiet:
            print(f"  {report.submissions} submissions, {report.document_entries} DocumentEntries, "
                  f"{len(report.rejected)} rejected", file=sys.stderr, flush=True)

    try:
        loader = BulkLoader(registry, batch_size=args.batch_size, workers=args.workers,
                            patients="register" if args.register_patients else "require", progress=progress)
        report = loader.load(file_submissions(args.sources))
    except FileNotFoundError as e:
        print(f"xds: {e}", file=sys.stderr)
        return 2
    finally:
        registry.close()
    for rejected in report.rejected:
        for e in rejected.errors:
            print(f"{rejected.source}: {e.code}: {e.context}", file=sys.stderr)
    print(report.summary())
    return 1 if report.rejected else 0


def _imaging_migrate(args: argparse.Namespace) -> int:
    """Move the imaging instances a node stored under <data_dir>/imaging before the instances went
    to the configured document store (xds.imaging.storage) into that store."""
    from xds.imaging.storage import LegacyFallbackStore, instance_storage

    try:
        cfg = config_mod.load(args.config, args.data_dir)
    except config_mod.ConfigError as e:
        print(f"xds: {e}", file=sys.stderr)
        return 2
    store = instance_storage(cfg)
    try:
        moved = store.migrate() if isinstance(store, LegacyFallbackStore) else 0
    finally:
        store.close()
    print(f"{moved} imaging instance(s) moved to the document store")
    return 0


def _audit_query(args: argparse.Namespace) -> int:
    """Who accessed this patient's / study's / document's exams, when, from where (the node's local
    audit store, xds.audit.store)."""
    import json

    from xds.audit.store import AuditStore
    from xds.audit.trail import database_url

    if args.database:
        url = args.database if "://" in args.database else f"sqlite:///{os.path.abspath(args.database)}"
    else:
        try:
            url = database_url(config_mod.load(args.config, args.data_dir))
        except config_mod.ConfigError as e:
            print(f"xds: {e}", file=sys.stderr)
            return 2
    if url.startswith("sqlite:///") and not os.path.isfile(url[len("sqlite:///"):]):
        print(f"xds: no audit store at {url[len('sqlite:///'):]}", file=sys.stderr)
        return 2
    store = AuditStore.open(url)
    try:
        rows = store.accesses(patient=args.patient, study=args.study, document=args.document,
                              since=args.since, until=args.until, limit=args.limit)
    finally:
        store.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
        return 0
    columns = ("time", "transaction", "event", "action", "outcome", "user", "roles", "purposes", "system", "address")
    print("\t".join(columns))
    for r in rows:
        print("\t".join(str(getattr(r, c)) or "-" for c in columns))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xds", description="Regional Diagnostic Imaging Repository node")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a DIR node")
    serve.add_argument("--config", required=True, help="node configuration (TOML), e.g. conf/hdirs.toml")
    serve.add_argument("--data-dir", help="put all state (database, documents) under this directory")
    serve.add_argument("--workers", type=int, default=0, help="HTTP worker processes (default: from config)")
    serve.set_defaults(func=_serve)
    bulk = sub.add_parser("bulk-load", help="register SubmitObjectsRequest files straight into the registry "
                          "database, in batches (migrations)")
    bulk.add_argument("--config", required=True, help="node configuration (TOML): its database and registry settings")
    bulk.add_argument("--data-dir", help="the node's data directory (as for serve)")
    bulk.add_argument("--batch-size", type=int, default=1000, help="submissions per transaction (default 1000)")
    bulk.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                      help="processes that read, validate and serialise (default: one per CPU; 0: none)")
    bulk.add_argument("--register-patients", action="store_true",
                      help="register unknown affinity-domain patient ids (flagged source=xds-bulk-load) "
                      "instead of rejecting their submissions with XDSUnknownPatientId")
    bulk.add_argument("--quiet", action="store_true", help="no progress lines")
    bulk.add_argument("sources", nargs="+", metavar="SOURCE",
                      help="SubmitObjectsRequest file, or a directory of them (*.xml, recursively)")
    bulk.set_defaults(func=_bulk_load)
    migrate = sub.add_parser("imaging-migrate", help="move imaging instances kept under <data-dir>/imaging by "
                             "older versions into the configured document store (the node may be running)")
    migrate.add_argument("--config", required=True, help="node configuration (TOML): its document store")
    migrate.add_argument("--data-dir", help="the node's data directory (as for serve)")
    migrate.set_defaults(func=_imaging_migrate)
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("config")
    check.set_defaults(func=_check_config)
    from xds.consent.cli import add_parser as add_consent_parser

    add_consent_parser(sub)
    audit = sub.add_parser("audit", help="the node's ATNA audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    query = audit_sub.add_parser("query", help="who accessed a patient's / study's / document's exams, when, from where")
    where = query.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="node configuration (TOML): its audit store")
    where.add_argument("--database", help="the audit store: a SQLite file or a SQLAlchemy URL")
    query.add_argument("--data-dir", help="the node's data directory (with --config)")
    what = query.add_mutually_exclusive_group(required=True)
    what.add_argument("--patient", help="patient id: CX (id^^^&OID&ISO) or the bare health number")
    what.add_argument("--study", help="Study Instance UID")
    what.add_argument("--document", help="XDSDocumentEntry.uniqueId")
    query.add_argument("--since", help="from this EventDateTime (ISO 8601, UTC)")
    query.add_argument("--until", help="up to this EventDateTime (ISO 8601, UTC)")
    query.add_argument("--limit", type=int, default=1000)
    query.add_argument("--json", action="store_true", help="JSON instead of tab-separated lines")
    query.set_defaults(func=_audit_query)
    certs = sub.add_parser("certs", help="development PKI (TLS certificates)")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    init = certs_sub.add_parser("init", help="create a development CA, node, client and IdP certificates")
    init.add_argument("--dir", default="certs", help="where to write them (default: certs/)")
    init.add_argument("--host", action="append", help="subjectAltName of the node certificate (repeatable; "
                      "default: localhost and 127.0.0.1)")
    init.add_argument("--node", default="node", help="file name and CN of the node certificate")
    init.add_argument("--client", action="append", help="a client certificate to issue (repeatable; default: client)")
    init.add_argument("--days", type=int, default=825, help="validity of the issued certificates")
    init.add_argument("--key-type", choices=("ec", "rsa"), default="ec")
    init.add_argument("--force", action="store_true", help="replace the CA and every certificate")
    init.set_defaults(func=_certs_init)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
