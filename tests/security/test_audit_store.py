"""The audit messages (DICOM PS3.15 A.5.1), the local append-only store and its questions."""

from __future__ import annotations

import pytest
import sqlalchemy
from lxml import etree

from xds.audit import codes, events
from xds.audit.context import AuditContext, DocumentRef, QueryRef, StudyRef
from xds.audit.message import validate
from xds.audit.store import AuditStore
from xds.audit.syslog import octet_counted, parse_octet_counted, syslog_message

HN = "9876543210^^^&2.16.840.1.113883.4.59&ISO"
OTHER = "1111111111^^^&2.16.840.1.113883.4.59&ISO"
SOURCE = events.Source("HDIRS", "urn:oid:2.25.1", "dir.example.ca")
NODE = events.Party("https://dir.example.ca/xds/repository")
PEER = events.Party("http://www.w3.org/2005/08/addressing/anonymous", "10.1.2.3", "CN=viewer,O=Hospital,C=CA")
DOCTOR = events.Person("dr.smith", "Dr Smith<dr.smith@https://idp.example.ca>",
                       roles=(codes.Coded("309343006", "SNOMED_CT", "Physician"),),
                       purposes_of_use=(codes.Coded("TREATMENT", "2.16.840.1.113883.3.18.7.1", "Treatment"),))


def message(name: str, ctx: AuditContext, outcome: int = 0, person=None):
    return events.transaction_message(events.TRANSACTIONS[name], outcome=outcome, node=NODE, peer=PEER,
                                      source=SOURCE, context=ctx, person=person)


@pytest.fixture
def store(tmp_path):
    s = AuditStore.open(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    yield s
    s.close()


def every_message():
    query = QueryRef("urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", b"<q/>", "urn:oid:2.25.1")
    doc = DocumentRef("2.25.7", "2.25.8", "urn:oid:2.25.1")
    study = StudyRef("2.25.9", (("1.2.840.10008.5.1.4.1.1.2", "2.25.10"),))
    yield message("ITI-18", AuditContext([HN], query=query), person=DOCTOR)
    yield message("ITI-38", AuditContext([HN], query=query))
    yield message("ITI-41", AuditContext([HN], [doc], submission_set_unique_id="2.25.11"))
    yield message("ITI-42", AuditContext([HN], submission_set_unique_id="2.25.11"), outcome=8)
    yield message("RAD-68", AuditContext([HN], [doc], [study], submission_set_unique_id="2.25.11"))
    yield message("ITI-43", AuditContext([], [doc]), outcome=4)
    yield message("ITI-39", AuditContext([], [doc]))
    yield message("RAD-69", AuditContext([HN], studies=[study]), person=DOCTOR)
    yield message("RAD-75", AuditContext(studies=[study]))
    yield events.patient_identity_feed(outcome=0, action="C", patient_id=HN, message_control_id="MSG1",
                                       sender=events.Party("ADT|HOSP", "10.0.0.9"), receiver=events.Party("XDSREG|HDIRS"),
                                       source=SOURCE)
    yield events.application_activity(started=True, application="xds HDIRS", source=SOURCE, launcher="xds")
    yield events.application_activity(started=False, application="xds HDIRS", source=SOURCE)
    yield events.user_authentication(outcome=4, person=None, node=NODE, peer=PEER, source=SOURCE,
                                     description="assertion expired")
    yield events.security_alert(outcome=4, alert=codes.NODE_AUTHENTICATION, reporter=NODE, performer=PEER,
                                subject=NODE.user_id, source=SOURCE, description="certificate has expired")


@pytest.mark.parametrize("msg", list(every_message()), ids=lambda m: m.transaction or m.event_types[0].text)
def test_every_audit_message_validates_against_the_ps3_15_schema(msg):
    assert validate(msg.to_bytes()) == []


def test_uids_of_a_hostile_data_set_do_not_lose_its_audit_record(store):
    # found by tests/fuzz: a C-STORE data set whose SOP Class UID holds a NUL made lxml refuse the
    # DICOM Instances Transferred message, and the access went unaudited
    msg = events.instances_transferred(
        outcome=0, sender=events.Party("PACS", "10.0.0.7"), receiver=NODE, source=SOURCE, study="2.25.9\x00",
        instances=(("1.2.840\x0010008.5.1.4.1.1.88.59", "2.25.10\x1b"),), patient_id=HN,
    )
    assert validate(msg.to_bytes()) == []
    assert store.append(msg, queue=False)


def test_audit_xml_is_written_as_lxml_would_serialise_the_tree():
    hostile = message("ITI-18", AuditContext([HN], query=QueryRef("q\"<&>", b"<q/>")), person=DOCTOR)
    hostile.participants[0].user_id = 'a"b<c>&d\te\nf\rg\x01h'
    hostile.outcome_description = 'x<y>&z\r\n"q"\x00'
    for msg in [*every_message(), hostile]:
        assert msg.to_bytes() == etree.tostring(msg.to_xml(), xml_declaration=True, encoding="UTF-8")


def test_records_queued_together_are_committed_together_and_each_gets_its_id(store):
    import threading

    from xds.audit.store import Record
    from xds.audit.trail import AuditWriter

    batches: list[int] = []
    gate = threading.Event()
    append_batch = store.append_batch

    def slow_first_batch(records, connection=None):
        gate.wait(5)
        batches.append(len(records))
        return append_batch(records, connection)

    store.append_batch = slow_first_batch
    writer = AuditWriter(store, on_stored=lambda records: None, on_failed=lambda record, exc: None)
    futures = [writer.put(Record(message("ITI-18", AuditContext([HN])), queue=True)) for _ in range(5)]
    gate.set()
    ids = [f.result(5) for f in futures]
    writer.close()
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert sum(batches) == 5 and len(batches) < 5  # the records queued while a batch was written share one
    assert store.queued() == 5


def test_a_waiter_that_went_away_neither_loses_its_record_nor_stops_the_writer(store):
    """A request cancelled while it waits for its record's commit cancels its future: the record is
    stored all the same, and the writer goes on committing the records of every later answer."""
    import asyncio
    import threading

    from xds.audit.store import Record
    from xds.audit.trail import AuditWriter

    gate = threading.Event()
    append_batch = store.append_batch

    def held(records, connection=None):
        gate.wait(5)
        return append_batch(records, connection)

    store.append_batch = held
    writer = AuditWriter(store, on_stored=lambda records: None, on_failed=lambda record, exc: None)

    async def cancelled_waiter() -> None:
        first = writer.put(Record(message("ITI-18", AuditContext([HN]))))  # being written, held
        waiting = asyncio.ensure_future(asyncio.wrap_future(writer.put(Record(message("ITI-43", AuditContext([HN]))))))
        await asyncio.sleep(0.05)
        waiting.cancel()  # as when the task awaiting AuditTrail.committed is cancelled
        await asyncio.sleep(0.05)
        gate.set()
        assert await asyncio.wrap_future(first)

    asyncio.run(cancelled_waiter())
    later = writer.put(Record(message("RAD-69", AuditContext([HN]))))
    assert later.result(5)
    writer.close()
    assert [a.transaction for a in store.accesses(patient=HN)] == ["ITI-18", "ITI-43", "RAD-69"]


def test_a_record_the_store_refuses_does_not_take_its_batch_with_it(store):
    from concurrent.futures import Future

    from xds.audit.store import Record
    from xds.audit.trail import AuditWriter

    refused: list[str] = []
    append_batch = store.append_batch

    def refuse_rad69(records, connection=None):
        if any(r.message.transaction == "RAD-69" for r in records):
            raise RuntimeError("disk full")
        return append_batch(records, connection)

    store.append_batch = refuse_rad69
    writer = AuditWriter(store, on_stored=lambda records: None,
                         on_failed=lambda record, exc: refused.append(record.message.transaction))
    writer._write([(Record(message(name, AuditContext([HN]))), Future()) for name in ("ITI-18", "RAD-69", "ITI-43")])
    writer.close()
    assert refused == ["RAD-69"]
    assert [a.transaction for a in store.accesses(patient=HN)] == ["ITI-18", "ITI-43"]


def test_trail_record_waits_for_the_commit_and_never_raises(tmp_path):
    import asyncio

    from xds.audit.trail import AuditTrail

    trail = AuditTrail(AuditStore.open(f"sqlite:///{tmp_path / 'audit.sqlite'}"), SOURCE)
    event = trail.record(message("ITI-18", AuditContext([HN])))
    assert trail.store.messages([event])  # committed when record returns
    event = asyncio.run(trail.record_async(message("ITI-43", AuditContext([HN]))))
    assert [a.transaction for a in trail.store.accesses(patient=HN)] == ["ITI-18", "ITI-43"] and event
    trail.store.append_batch = lambda records, connection=None: 1 / 0
    assert trail.record(message("ITI-18", AuditContext([HN]))) is None and trail.lost == 1
    trail.close()


def test_schema_rejects_a_message_missing_its_audit_source():
    xml = message("ITI-18", AuditContext()).to_xml()
    xml.remove(xml.find("AuditSourceIdentification"))
    assert validate(xml)


def test_query_message_per_iti_18_audit_table():
    xml = etree.fromstring(message("ITI-18", AuditContext([HN], query=QueryRef("urn:uuid:q", b"<q/>")),
                                   person=DOCTOR).to_bytes())
    ev = xml.find("EventIdentification")
    assert (ev.get("EventActionCode"), ev.find("EventID").get("csd-code"), ev.find("EventTypeCode").get("csd-code")) == (
        "E", "110112", "ITI-18")
    assert ev.find("PurposeOfUse").get("csd-code") == "TREATMENT"
    source, destination, human = xml.findall("ActiveParticipant")
    assert source.get("UserIsRequestor") == "true" and source.find("RoleIDCode").get("csd-code") == "110153"
    assert source.get("NetworkAccessPointID") == "10.1.2.3" and source.get("NetworkAccessPointTypeCode") == "2"
    assert destination.get("UserIsRequestor") == "false" and destination.get("UserID") == NODE.user_id
    assert human.get("UserName").startswith("Dr Smith") and human.find("RoleIDCode").get("csd-code") == "309343006"
    patient, query = xml.findall("ParticipantObjectIdentification")
    assert (patient.get("ParticipantObjectTypeCode"), patient.get("ParticipantObjectTypeCodeRole")) == ("1", "1")
    assert (query.get("ParticipantObjectTypeCodeRole"), query.get("ParticipantObjectID")) == ("24", "urn:uuid:q")
    assert query.findtext("ParticipantObjectQuery") == "PHEvPg=="


def test_export_message_makes_the_node_the_source_and_the_requestor_the_destination():
    xml = etree.fromstring(message("ITI-43", AuditContext([], [DocumentRef("2.25.7", "2.25.8")])).to_bytes())
    assert xml.find("EventIdentification").get("EventActionCode") == "R"
    source, destination = xml.findall("ActiveParticipant")
    assert source.get("UserIsRequestor") == "false" and source.find("RoleIDCode").get("csd-code") == "110153"
    assert destination.get("UserIsRequestor") == "true" and destination.find("RoleIDCode").get("csd-code") == "110152"
    doc = xml.find("ParticipantObjectIdentification")
    assert doc.find("ParticipantObjectIDTypeCode").get("csd-code") == "9"
    assert doc.find("ParticipantObjectDetail").get("type") == "Repository Unique Id"


def test_store_is_append_only(store):
    store.append(message("ITI-18", AuditContext([HN])), queue=False)
    with store.engine.begin() as conn:
        for statement in ("UPDATE audit_event SET outcome = 0", "DELETE FROM audit_event", "DELETE FROM audit_object"):
            with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                conn.exec_driver_sql(statement)


def test_who_accessed_this_patients_and_this_studys_exams(store):
    study = StudyRef("2.25.9")
    doc = DocumentRef("2.25.7", "2.25.8")
    store.append(message("RAD-68", AuditContext([HN], [doc], [study], submission_set_unique_id="2.25.11")),
                 queue=False, links=[("document", "2.25.7", HN), ("study", "2.25.9", HN)])
    store.append(message("ITI-18", AuditContext([HN]), person=DOCTOR), queue=False)
    store.append(message("ITI-43", AuditContext([], [doc])), queue=False)  # names the document only
    store.append(message("RAD-69", AuditContext([], studies=[study]), person=DOCTOR), queue=False)
    store.append(message("ITI-18", AuditContext([OTHER])), queue=False)
    by_patient = store.accesses(patient=HN)
    assert [a.transaction for a in by_patient] == ["RAD-68", "ITI-18", "ITI-43", "RAD-69"]
    assert [a.transaction for a in store.accesses(patient="9876543210")] == ["RAD-68", "ITI-18", "ITI-43", "RAD-69"]
    query = by_patient[1]
    assert query.user.startswith("Dr Smith") and "Physician" in query.roles and "TREATMENT" in query.purposes
    assert (query.system, query.address) == ("CN=viewer,O=Hospital,C=CA", "10.1.2.3")
    assert [a.transaction for a in store.accesses(study="2.25.9")] == ["RAD-68", "RAD-69"]


def test_outbox_claims_are_exclusive_and_failed_messages_come_back(store):
    for _ in range(3):
        store.append(message("ITI-18", AuditContext([HN])), queue=True)
    first = store.claim(limit=2)
    assert len(first) == 2 and len(store.claim(limit=10)) == 1  # the rest, not the claimed ones
    store.failed([p.event for p in first], "down", retry_in=0.0)
    again = store.claim(limit=10)
    assert [p.event for p in again] == [p.event for p in first] and again[0].attempts == 1
    store.delivered([p.event for p in again])
    assert store.queued() == 1


def test_rfc5424_header_and_rfc5425_octet_counting():
    msg = syslog_message(b"<AuditMessage/>", hostname="dir one", app_name="xds-HDIRS", procid="42")
    header, _, rest = msg.partition(b" - ")
    pri_version, ts, host, app, procid, msgid = header.split(b" ")
    assert (pri_version, host, app, procid, msgid) == (b"<85>1", b"dir_one", b"xds-HDIRS", b"42", b"IHE+RFC-3881")
    assert ts.endswith(b"Z") and rest == b"\xef\xbb\xbf<AuditMessage/>"
    buffer = bytearray(octet_counted(msg) + octet_counted(b"x")[:-1])
    assert parse_octet_counted(buffer) == [msg] and buffer == b"1 "
