"""xds.client: the integrators' XdsClient against a real node, and MtomTransport's wire format.

XdsClient scenarios follow a Document Source and Consumer: provide and register (ITI-41) from a
file and from a stream, register metadata only (ITI-42), find (ITI-18) and retrieve (ITI-43).
The MTOM requests are read back with the standard library's MIME parser, independent of ours.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import io
import os
import uuid

import pytest
import requests
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder
from zeep.wsdl.attachments import MessagePack

from tests.interop.conftest import REPOSITORY_ID
from xds.client import APPROVED, FIND_DOCUMENTS, XdsClient, _query_values
from xds.client.mtom import MtomTransport, MultipartRelated, XopPart, keep_binary_parts_whole
from xds.metadata import model as m

# opaque bytes: a report as PDF (an application/dicom document would be checked as a KOS, RAD-68)
PDF = m.Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "Scanned Documents (PDF)")


def oid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def document_entry(symbol: str, patient: str, **kw: object) -> m.DocumentEntry:
    return m.DocumentEntry(
        entry_uuid=symbol,
        unique_id=oid(),
        patient_id=patient,
        mime_type="application/pdf",
        title="CT chest report",
        class_code=m.Code("IMG", "1.3.6.1.4.1.19376.1.2.6.1", "Imaging"),
        type_code=m.Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
        format_code=PDF,
        healthcare_facility_type_code=m.Code(
            "Outpatient", "Connect-a-thon healthcareFacilityTypeCodes", "Outpatient"
        ),
        practice_setting_code=m.Code("Radiology", "Connect-a-thon practiceSettingCodes", "Radiology"),
        confidentiality_codes=[m.Code("N", "2.16.840.1.113883.5.25", "Normal")],
        creation_time="20240102030405",
        language_code="en-CA",
        source_patient_id="MRN77^^^&1.2.3.4&ISO",
        **kw,
    )


def submission(patient: str, *entries: m.DocumentEntry) -> m.Submission:
    ss = m.SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=oid(),
        source_id="1.3.6.1.4.1.21367.2005.3.7",
        patient_id=patient,
        submission_time="20240102030500",
        content_type_code=m.Code("Imaging", "Connect-a-thon contentTypeCodes", "Imaging"),
    )
    members = [
        m.Association(
            entry_uuid=f"HasMember{i}",
            association_type=m.HAS_MEMBER,
            source=ss.entry_uuid,
            target=e.entry_uuid,
            submission_set_status="Original",
        )
        for i, e in enumerate(entries)
    ]
    return m.Submission(submission_set=ss, document_entries=list(entries), associations=members)


@pytest.fixture
def client(node):
    with XdsClient(node.url("/xds/registry"), node.url("/xds/repository"), timeout=30) as c:
        yield c


def find(client: XdsClient, patient: str):
    return client.stored_query(
        FIND_DOCUMENTS, {"$XDSDocumentEntryPatientId": patient, "$XDSDocumentEntryStatus": [APPROVED]}
    )


def test_provide_find_and_retrieve_documents_with_xds_client(client, patient, tmp_path):
    on_disk = b"\r\n" + os.urandom(1024 * 1024) + b"\r\n--not-a-boundary\r\n\r\n"
    path = tmp_path / "manifest.dcm"
    path.write_bytes(on_disk)
    streamed = os.urandom(200_000) + b"\r\n"
    first, second = document_entry("Document01", patient), document_entry("Document02", patient)

    provided = client.provide_and_register(
        submission(patient, first, second), {"Document01": path, "Document02": io.BytesIO(streamed)}
    )
    assert provided.ok, provided.errors

    found = find(client, patient)
    assert found.ok
    entries = {e.unique_id: e for e in found.document_entries}
    assert entries.keys() == {first.unique_id, second.unique_id}
    for entry, content in ((first, on_disk), (second, streamed)):
        got = entries[entry.unique_id]
        assert (got.hash, got.size, got.repository_unique_id) == (
            hashlib.sha1(content).hexdigest(),
            len(content),
            REPOSITORY_ID,
        )
        assert got.format_code == PDF and got.title == "CT chest report"

    retrieved = client.retrieve([(REPOSITORY_ID, first.unique_id), (REPOSITORY_ID, second.unique_id)])
    assert retrieved.ok
    by_id = {d.document_unique_id: d for d in retrieved.documents}
    assert by_id[first.unique_id].content == on_disk
    assert by_id[second.unique_id].content == streamed
    assert {d.mime_type for d in retrieved.documents} == {"application/pdf"}


def test_register_metadata_then_find_it_with_xds_client(client, patient):
    entry = document_entry(
        "Document01",
        patient,
        hash=hashlib.sha1(b"elsewhere").hexdigest(),
        size=9,
        repository_unique_id="2.25.1234",
    )
    registered = client.register(submission(patient, entry))
    assert registered.ok, registered.errors
    [found] = find(client, patient).document_entries
    assert (found.unique_id, found.repository_unique_id, found.size) == (entry.unique_id, "2.25.1234", 9)
    assert found.entry_uuid.startswith("urn:uuid:")


def test_register_for_an_unknown_patient_fails_with_XDSUnknownPatientId(client):
    stranger = f"{uuid.uuid4().int % 10**10:010d}^^^&2.16.840.1.113883.4.59&ISO"
    entry = document_entry("Document01", stranger, hash="0" * 40, size=1, repository_unique_id=REPOSITORY_ID)
    answer = client.register(submission(stranger, entry))
    assert not answer.ok
    assert "XDSUnknownPatientId" in {e.code for e in answer.errors}


def test_retrieve_of_an_unknown_document_fails_with_XDSDocumentUniqueIdError(client):
    answer = client.retrieve([(REPOSITORY_ID, oid())])
    assert answer.status.endswith(":Failure") and not answer.documents
    assert [e.code for e in answer.errors] == ["XDSDocumentUniqueIdError"]


def test_xds_client_built_from_the_served_wsdl(node, patient):
    with XdsClient(node.url("/xds/registry"), wsdl="endpoint") as client:
        answer = find(client, patient)
        assert answer.ok and answer.objects == []
        assert client._client("registry").wsdl.location == node.url("/xds/registry?wsdl")


def test_stored_query_values_are_written_in_query_syntax():
    """ITI TF-2a 3.18.4.1.2.3.5: quoted strings (quotes doubled), lists in parentheses; a list of
    lists is several values (AND)."""
    assert _query_values("O'Brien^^^&1.2&ISO") == ["'O''Brien^^^&1.2&ISO'"]
    assert _query_values(20240101) == ["20240101"]
    assert _query_values([APPROVED]) == [f"('{APPROVED}')"]
    assert _query_values([["a^^x", "b^^x"], ["c^^y"]]) == ["('a^^x','b^^x')", "('c^^y')"]


# --- MtomTransport on the wire, without a server ---


def test_mtom_request_is_multipart_related_with_the_bytes_unencoded(tmp_path):
    content = b"\r\n--MIMEBoundary_x\r\n\r\n" + bytes(range(256)) * 100 + b"\r\n"
    path = tmp_path / "d.bin"
    path.write_bytes(content)
    transport = MtomTransport()
    part = transport.part(path, "application/pdf")
    envelope = (
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
        '<x:ProvideAndRegisterDocumentSetRequest xmlns:x="urn:ihe:iti:xds-b:2007">'
        f'<x:Document id="Document01">{part.placeholder}</x:Document>'
        '<x:Document id="Document02">aGVsbG8=</x:Document>'
        "</x:ProvideAndRegisterDocumentSetRequest></e:Body></e:Envelope>"
    )
    tree = etree.fromstring(envelope)
    parts = transport._extract_parts(tree)
    body = MultipartRelated(
        etree.tostring(tree), parts, 'application/soap+xml; charset=utf-8; action="urn:a"'
    )
    raw = b"".join(body)
    assert len(raw) == len(body) == body.length

    message = email.message_from_bytes(
        f"Content-Type: {body.content_type}\r\n\r\n".encode() + raw, policy=email.policy.HTTP
    )
    assert message.get_content_type() == "multipart/related"
    assert message.get_param("action") == "urn:a" and message.get_param("type") == "application/xop+xml"
    root, first, second = message.iter_parts()
    assert root["Content-ID"] == message.get_param("start")
    assert root.get_content_type() == "application/xop+xml"
    includes = etree.fromstring(root.get_payload(decode=True)).iter(
        "{http://www.w3.org/2004/08/xop/include}Include"
    )
    hrefs = [i.get("href") for i in includes]
    assert hrefs == [f"cid:{first['Content-ID'][1:-1]}", f"cid:{second['Content-ID'][1:-1]}"]
    assert first.get_content_type() == "application/pdf" and first.get_payload(decode=True) == content
    assert second.get_payload(decode=True) == b"hello"


def test_a_part_from_an_unseekable_stream_is_sent_chunked():
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.left = [b"ab\r\n", b"cd"]

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self.left.pop(0) if self.left else b""

    part = XopPart(Pipe())
    assert part.size is None
    body = MultipartRelated(b"<e/>", [("x@y", part)], "application/soap+xml")
    assert body.length is None
    with pytest.raises(TypeError):
        len(body)
    assert b"\r\n\r\nab\r\ncd\r\n--" in b"".join(body)


def test_binary_parts_of_an_answer_keep_their_crlf_ends_for_zeep():
    response = requests.Response()
    response.headers["Content-Type"] = 'multipart/related; boundary="b1"; type="application/xop+xml"'
    response._content = (
        b"--b1\r\nContent-Type: application/xop+xml\r\nContent-Transfer-Encoding: binary\r\n"
        b"Content-ID: <r>\r\n\r\n<e/>\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: Binary\r\nContent-ID: <d>\r\n\r\n\r\nDOC\r\n\r\n--b1--\r\n"
    )
    keep_binary_parts_whole(response)
    assert b"Content-Transfer-Encoding" not in response.content
    assert response.content.endswith(b"Content-ID: <d>\r\n\r\n\r\nDOC\r\n\r\n--b1--\r\n")

    parts = MultipartDecoder(response.content, response.headers["Content-Type"]).parts
    assert MessagePack(parts[1:]).get_by_content_id("<d>").content == b"\r\nDOC\r\n"
