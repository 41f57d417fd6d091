"""FindDocuments latency over HTTP: bulk-load N DocumentEntries straight into the registry tables,
serve ITI-18 with uvicorn, and time AdhocQueryRequests from an httpx client (p50 / p99 per query
shape).

    PYTHONPATH=. .venv/bin/python bench/bench_find_documents.py --entries 100000 --patients 2000
    PYTHONPATH=. .venv/bin/python bench/bench_find_documents.py --url postgresql+psycopg://postgres@127.0.0.1/xds_bench

Without --url a temporary SQLite file is used. The database is migrated and, unless --keep, its
registry tables are emptied first.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import uvicorn
from lxml import etree
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.routing import Route

from xds.config import RegistryConfig
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.metadata.datatypes import dtm_lower_bound
from xds.namespaces import QUERY, RIM, SOAP12, WSA
from xds.registry import schema as s
from xds.registry.db import create_registry_engine, migrate
from xds.registry.stored_query import ACTION, BY_NAME, RESPONSE_ACTION, iti18_handler
from xds.soap.dispatch import Endpoint

AUTHORITY = "1.3.6.1.4.1.21367.2005.13.20.1000"
CLASSES = [m.Code(c, "1.3.6.1.4.1.21367.100.1") for c in ("Consult", "Imaging", "Lab", "Report", "Referral")]
EVENTS = [m.Code(f"E{i:02d}", "SNM3") for i in range(20)]
CONFIDENTIALITY = [m.Code(c, "2.16.840.1.113883.5.25") for c in ("N", "R", "V")]
AUTHORS = ["^Smitty^Gerald^^^", "^Jones^Ann^^^", "^Dopplemeyer^Sherry^^^", "^Brown^Bob^^^"]


def patient(i: int) -> str:
    return f"P{i:09d}^^^&{AUTHORITY}&ISO"


def template_fragment() -> tuple[str, str]:
    de = m.DocumentEntry(
        entry_uuid="urn:uuid:00000000-0000-0000-0000-000000000000",
        unique_id="1.2.3",
        patient_id=patient(0),
        status=m.STATUS_APPROVED,
        mime_type="application/dicom",
        class_code=CLASSES[0],
        type_code=m.Code("18748-4", "2.16.840.1.113883.6.1"),
        format_code=m.Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1"),
        healthcare_facility_type_code=m.Code("Outpatient", "Connect-a-thon healthcareFacilityTypeCodes"),
        practice_setting_code=m.Code("Radiology", "Connect-a-thon practiceSettingCodes"),
        confidentiality_codes=[CONFIDENTIALITY[0]],
        event_codes=[EVENTS[0]],
        authors=[m.Author(person=AUTHORS[0], institutions=["Hospital^^^^^&1.2.3&ISO"])],
        creation_time="20200101120000",
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=123456,
        repository_unique_id="1.19.6.24.109.42.1.5",
    )
    return etree.tostring(ebrim.serialize_document_entry(de), encoding="unicode"), de.entry_uuid


def load(engine: Engine, entries: int, patients: int, batch: int = 5000) -> None:
    fragment, placeholder = template_fragment()
    rnd = random.Random(42)
    started = time.perf_counter()
    done = 0
    while done < entries:
        n = min(batch, entries - done)
        docs, events, conf, authors = [], [], [], []
        for _ in range(n):
            uid = f"urn:uuid:{uuid.uuid4()}"
            klass = rnd.choice(CLASSES)
            created = f"20{rnd.randint(10, 24):02d}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}"
            docs.append(
                {
                    "entry_uuid": uid,
                    "unique_id": f"1.2.3.{uuid.uuid4().int % 10**15}",
                    "logical_id": uid,
                    "version": 1,
                    "patient_id": patient(rnd.randrange(patients)),
                    "status": m.STATUS_APPROVED if rnd.random() < 0.9 else m.STATUS_DEPRECATED,
                    "object_type": m.STABLE_DOCUMENT_ENTRY,
                    "class_code": klass.code,
                    "class_code_scheme": klass.scheme,
                    "type_code": "18748-4",
                    "type_code_scheme": "2.16.840.1.113883.6.1",
                    "format_code": "1.2.840.10008.5.1.4.1.1.88.59",
                    "format_code_scheme": "1.2.840.10008.2.6.1",
                    "creation_time": dtm_lower_bound(created),
                    "mime_type": "application/dicom",
                    "fragment": fragment.replace(placeholder, uid),
                }
            )
            for i, e in enumerate(rnd.sample(EVENTS, 2)):
                events.append({"entry_uuid": uid, "position": i, "code": e.code, "scheme": e.scheme})
            c = CONFIDENTIALITY[0] if rnd.random() < 0.8 else rnd.choice(CONFIDENTIALITY)
            conf.append({"entry_uuid": uid, "position": 0, "code": c.code, "scheme": c.scheme})
            authors.append({"entry_uuid": uid, "position": 0, "person": rnd.choice(AUTHORS)})
        with engine.begin() as conn:
            conn.execute(s.document_entry.insert(), docs)
            conn.execute(s.document_event_code.insert(), events)
            conn.execute(s.document_confidentiality_code.insert(), conf)
            conn.execute(s.document_author.insert(), authors)
        done += n
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))
        else:
            conn.exec_driver_sql("ANALYZE")
    print(f"loaded {entries} entries for {patients} patients in {time.perf_counter() - started:.1f} s")


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for t in reversed(s.metadata.sorted_tables):
            conn.execute(t.delete())


def envelope(slots: list[tuple[str, str]], returns: str = "LeafClass") -> bytes:
    values = "".join(
        f'<rim:Slot name="{name}"><rim:ValueList><rim:Value>{value}</rim:Value></rim:ValueList></rim:Slot>'
        for name, value in slots
    )
    body = (
        f'<query:AdhocQueryRequest xmlns:query="{QUERY}" xmlns:rim="{RIM}">'
        f'<query:ResponseOption returnType="{returns}" returnComposedObjects="true"/>'
        f'<rim:AdhocQuery id="{BY_NAME["FindDocuments"].id}">{values}</rim:AdhocQuery></query:AdhocQueryRequest>'
    )
    return (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{ACTION}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID></env:Header>"
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def shapes(rnd: random.Random, patients: int) -> dict[str, list[tuple[str, str]]]:
    pid = patient(rnd.randrange(patients)).replace("&", "&amp;")
    base = [
        ("$XDSDocumentEntryPatientId", f"'{pid}'"),
        ("$XDSDocumentEntryStatus", f"('{m.STATUS_APPROVED}')"),
    ]
    klass, event = rnd.choice(CLASSES), rnd.choice(EVENTS)
    return {
        "patient+status": base,
        "+classCode": [*base, ("$XDSDocumentEntryClassCode", f"('{klass.code}^^^{klass.scheme}')")],
        "+eventCode": [*base, ("$XDSDocumentEntryEventCodeList", f"('{event.code}^^^{event.scheme}')")],
        "+confidentiality N": [
            *base,
            ("$XDSDocumentEntryConfidentialityCode", "('N^^^2.16.840.1.113883.5.25')"),
        ],
        "+creationTime range": [
            *base,
            ("$XDSDocumentEntryCreationTimeFrom", "2015"),
            ("$XDSDocumentEntryCreationTimeTo", "2020"),
        ],
        "+authorPerson %Jones%": [*base, ("$XDSDocumentEntryAuthorPerson", "('%Jones%')")],
    }


def serve(engine: Engine, port: int) -> uvicorn.Server:
    endpoint = Endpoint("registry", "/xds/registry")
    registry = type("R", (), {"engine": engine, "settings": RegistryConfig()})()
    endpoint.add_operation(ACTION, RESPONSE_ACTION, iti18_handler(registry))
    app = Starlette(routes=[Route("/xds/registry", endpoint, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="")
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--patients", type=int, default=2_000)
    ap.add_argument("--queries", type=int, default=200, help="requests per query shape")
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--keep", action="store_true", help="query the data already there, load nothing")
    args = ap.parse_args()

    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.sqlite'}"
    engine = create_registry_engine(url)
    migrate(engine)
    if not args.keep:
        empty(engine)
        load(engine, args.entries, args.patients)
    server = serve(engine, args.port)
    rnd = random.Random(7)
    timings: dict[str, list[float]] = {}
    sizes: dict[str, list[int]] = {}
    headers = {"content-type": "application/soap+xml; charset=UTF-8"}
    with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60) as client:
        for _ in range(5):  # warm up connections and caches
            client.post(
                "/xds/registry",
                content=envelope(shapes(rnd, args.patients)["patient+status"]),
                headers=headers,
            )
        for _ in range(args.queries):
            for name, slots in shapes(rnd, args.patients).items():
                t0 = time.perf_counter()
                r = client.post("/xds/registry", content=envelope(slots), headers=headers)
                timings.setdefault(name, []).append(time.perf_counter() - t0)
                assert r.status_code == 200 and b"ResponseStatusType:Success" in r.content, r.content[:500]
                sizes.setdefault(name, []).append(r.content.count(b"<rim:ExtrinsicObject "))
    server.should_exit = True
    print(
        f"{engine.dialect.name}, {args.entries} entries, {args.patients} patients, {args.queries} requests per shape"
    )
    print(f"{'query':24} {'p50 ms':>8} {'p99 ms':>8} {'avg hits':>9}")
    for name, ts in timings.items():
        q = statistics.quantiles(ts, n=100)
        print(f"{name:24} {q[49] * 1000:8.1f} {q[98] * 1000:8.1f} {statistics.mean(sizes[name]):9.1f}")
    engine.dispose()


if __name__ == "__main__":
    main()
