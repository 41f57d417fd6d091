"""The whole node (xds.node.build_node on a temporary data directory) under mutated IHE requests.

Each endpoint gets mutations of the real requests it serves: ITI-42 and ITI-18 on /xds/registry,
ITI-41 (MTOM captures and inline documents) and ITI-43 on /xds/repository, RAD-69 on
/xds/imaging, ITI-38/39 and RAD-75 on /xca/respond, and any body with any action anywhere.
Every answer is a SOAP fault or the transaction's response with coded errors (:func:`wire.judge`);
no patient data of the seeds appears in faults or in log records at INFO and above; no exception
reaches a safety net; a refused submission leaves no file in the store; and after the last request
the sentinel document registered before the first is still retrievable and found, and no audit
record was lost (the ``intact`` fixture).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from hypothesis import event, given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz import seeds, wire
from tests.fuzz.conftest import fuzz, leaks, tracebacks
from tests.fuzz.mutations import MIME_TOKENS, XML_TOKENS, mutated_bytes, mutated_xml

pytestmark = seeds.needs_corpus

SUBMISSIONS = seeds.submissions()
QUERIES = seeds.queries()
PNR_BODIES = seeds.provide_and_register_bodies()
RETRIEVES = seeds.retrieve_requests()
MTOM = seeds.mtom_captures()
ALL_BODIES = SUBMISSIONS + QUERIES[:40] + PNR_BODIES + RETRIEVES


def action_for(body: bytes) -> str | None:
    try:
        return wire.ACTION_OF.get(etree.QName(etree.fromstring(body)).localname)
    except (etree.XMLSyntaxError, ValueError):
        return None


def stored_files(node) -> int:  # noqa: ANN001
    root = Path(node.node.config.data_dir)
    return sum(len(files) for _, _, files in os.walk(root / "documents"))


def send(node, caplog, path: str, body: bytes, content_type: str = wire.SOAP_CT) -> wire.Answer:  # noqa: ANN001
    before = stored_files(node)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        answer = wire.post(node.client, path, body, content_type, phi=seeds.PHI)
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, seeds.PHI)
    if answer.registry_status not in ("Success", "PartialSuccess"):
        assert stored_files(node) == before, "a refused request left a document in the repository's store"
    event(f"{answer.kind}: {answer.fault_code or answer.registry_status} {' '.join(sorted(set(answer.error_codes)))}")
    return answer


@fuzz(80)
@given(body=st.one_of(mutated_xml(SUBMISSIONS, max_ops=6), mutated_xml(QUERIES, max_ops=6)))
def test_registry_answers_mutated_submissions_and_queries(intact, caplog, body):
    action = action_for(body) or wire.REGISTER
    send(intact, caplog, "/xds/registry", wire.envelope(action, body))


@fuzz(60)
@given(body=mutated_bytes(SUBMISSIONS + QUERIES[:20], XML_TOKENS), action=st.sampled_from([wire.REGISTER, wire.STORED_QUERY]))
def test_registry_answers_byte_mutated_bodies(intact, caplog, body, action):
    send(intact, caplog, "/xds/registry", wire.envelope(action, body))


@fuzz(100)
@given(
    body=mutated_bytes([b for b, _ in MTOM], MIME_TOKENS + XML_TOKENS, max_ops=4),
    content_type=st.sampled_from([ct for _, ct in MTOM]),
)
def test_repository_answers_mutated_mtom_submissions(intact, caplog, body, content_type):
    send(intact, caplog, "/xds/repository", body, content_type)


def _split_capture(body: bytes) -> tuple[bytes, bytes, bytes]:
    """(before, root envelope, after) of an MTOM capture."""
    match = re.search(rb"<\?xml|<([\w.-]+:)?Envelope\b", body)
    assert match, body[:200]
    start = match.start()
    end = body.index(b"Envelope>", body.index(b"Body>") + 5) + len(b"Envelope>")
    return body[:start], body[start:end], body[end:]


CAPTURE_PARTS = [(_split_capture(b), ct) for b, ct in MTOM]


@st.composite
def restructured_captures(draw) -> tuple[bytes, str]:
    """An MTOM capture whose root envelope is mutated as a tree, its XOP parts left as they are."""
    (head, root, tail), content_type = draw(st.sampled_from(CAPTURE_PARTS))
    return head + draw(mutated_xml([root], max_ops=6)) + tail, content_type


@fuzz(100)
@given(case=restructured_captures())
def test_repository_answers_mtom_submissions_with_mutated_metadata(intact, caplog, case):
    send(intact, caplog, "/xds/repository", *case)


@fuzz(100)
@given(body=st.one_of(mutated_xml(PNR_BODIES, max_ops=6), mutated_xml(RETRIEVES, max_ops=4)))
def test_repository_answers_mutated_inline_submissions_and_retrieves(intact, caplog, body):
    action = action_for(body) or wire.PROVIDE
    send(intact, caplog, "/xds/repository", wire.envelope(action, body))


GATEWAY_ACTIONS = [wire.RAD69, wire.XCQ, wire.XCR, wire.RAD75]


@fuzz(100)
@given(body=st.one_of(mutated_xml(RETRIEVES, max_ops=4), mutated_xml(QUERIES, max_ops=4)),
       action=st.sampled_from(GATEWAY_ACTIONS))
def test_imaging_and_gateway_answer_mutated_retrieves_and_queries(intact, caplog, body, action):
    send(intact, caplog, wire.PATH_OF[action], wire.envelope(action, body))


@fuzz(80)
@given(
    body=st.sampled_from(ALL_BODIES),
    action=st.sampled_from(sorted(wire.PATH_OF)),
    path=st.sampled_from(sorted(set(wire.PATH_OF.values()))),
)
def test_any_request_on_any_endpoint(intact, caplog, body, action, path):
    send(intact, caplog, path, wire.envelope(action, body))
