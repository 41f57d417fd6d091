"""The NIST XDS Toolkit's captured ITI-41 wire bodies (PnrXop: XOP part, inline base64, %-encoded
cid, and a RAD-68 DICOM KOS sent inline by a .NET client) are accepted as sent."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from lxml import etree

from tests.repository.conftest import CORPUS, node_config, serve
from tests.repository.messages import REPOSITORY_ID, Request, retrieve_document_set
from xds.metadata.model import DE_UNIQUE_ID, SS_PATIENT_ID

PNR = CORPUS / "nist-testkit" / "PnrXop"


def captured(name: str) -> Request:
    plan = etree.parse(str(PNR / name / "testplan.xml"))
    headers = plan.findtext(".//HttpTransaction/Headers")
    ct = re.search(r"Content-Type:\s*(.+)", headers).group(1).strip()
    return Request(ct, (PNR / name / "body.txt").read_bytes())


def ids_of(body: bytes) -> tuple[str, str]:
    """(SubmissionSet patient id, document uniqueId) of a captured body."""
    text = body.decode("utf-8", "replace")

    def value(scheme: str) -> str:
        m = re.search(r'<rim:ExternalIdentifier[^>]*identificationScheme="' + scheme + r'"[^>]*>', text) or \
            re.search(r'<rim:ExternalIdentifier[^>]*value="[^"]*"[^>]*identificationScheme="' + scheme + '"', text)
        tag = m.group(0)
        return re.search(r'value="([^"]*)"', tag).group(1).replace("&amp;", "&")

    return value(SS_PATIENT_ID), value(DE_UNIQUE_ID)


@pytest.mark.parametrize("name", ["Xop", "NoXop", "encodedURL", "dicom"])
def test_captured_provide_and_register_is_accepted(tmp_path: Path, name: str) -> None:
    request = captured(name)
    patient, unique_id = ids_of(request.body)
    cfg = node_config(tmp_path / "node")
    cfg.registry.patient_assigning_authority = patient.split("&")[1]
    with serve(cfg) as node:
        node.feed(patient)
        out = node.post(request)
        assert (out.short_status, out.errors) == ("Success", [])
        [row] = node.registry.store.document_entries_by_unique_id(unique_id)
        assert row.repository_unique_id == REPOSITORY_ID
        [doc] = node.post(retrieve_document_set((REPOSITORY_ID, unique_id))).documents()
        assert len(doc["content"]) == row.size
        assert hashlib.sha1(doc["content"]).hexdigest() == row.hash
        if name in ("Xop", "encodedURL"):
            assert doc["content"] == (PNR / name / "my_document.txt").read_bytes()
        else:
            inline = re.search(rb"<(?:xdsb:)?Document id=[^>]*>([^<]+)</", request.body).group(1)
            assert doc["content"] == base64.b64decode(b"".join(inline.split()))
        assert doc["mime_type"] == ("application/dicom" if name == "dicom" else "text/plain")
        if name == "dicom":
            assert doc["content"][128:132] == b"DICM"
