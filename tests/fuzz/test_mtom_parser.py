"""The MTOM/XOP parser (xds.soap.mtom) on mutated NIST wire captures, fed in arbitrary chunks.

Properties: a package or a SOAP fault, nothing else; the outcome does not depend on how the
network cut the body; no spooled temporary file survives; what parses survives a round trip
through the node's own MTOM writer.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import seeds
from tests.fuzz.conftest import fuzz
from tests.fuzz.mutations import MIME_TOKENS, XML_TOKENS, chunked, mutated_bytes
from xds.soap.fault import SoapFault
from xds.soap.mtom import MimePackage, mtom_response, parse_multipart_related

pytestmark = seeds.needs_corpus

CAPTURES = seeds.mtom_captures()
BODIES = [b for b, _ in CAPTURES] + [b.replace(b"\n", b"\r\n") for b, _ in CAPTURES]
CONTENT_TYPES = [ct for _, ct in CAPTURES]


async def _stream(chunks: list[bytes]):
    for c in chunks:
        yield c


def parse(chunks: list[bytes], content_type: str, spool: int) -> MimePackage | SoapFault:
    try:
        return asyncio.run(parse_multipart_related(
            _stream(chunks), content_type, spool_threshold=spool, max_total=1024**2, max_root=256 * 1024,
        ))
    except SoapFault as fault:
        return fault


def outcome(result: MimePackage | SoapFault) -> tuple:
    """What a parse produced, comparable across runs (and the package's spool files removed)."""
    if isinstance(result, SoapFault):
        return ("fault", result.code)
    try:
        return ("package", result.root, result.root_content_type,
                sorted((cid, a.content_type, a.read_bytes()) for cid, a in result.attachments.items()))
    finally:
        result.close()


def spooled() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("xds-mtom-")}


@st.composite
def bodies_and_types(draw) -> tuple[bytes, str]:
    body = draw(st.one_of(st.sampled_from(BODIES), mutated_bytes(BODIES, MIME_TOKENS + XML_TOKENS)))
    return body, draw(st.sampled_from(CONTENT_TYPES))


@fuzz(200)
@given(case=bodies_and_types(), data=st.data(), spool=st.sampled_from([16, 100, 1 << 20]))
def test_parse_outcome_does_not_depend_on_chunking(case, data, spool):
    body, content_type = case
    before = spooled()
    whole = outcome(parse([body], content_type, spool))
    cut = outcome(parse(data.draw(chunked(body)), content_type, spool))
    assert whole == cut
    assert spooled() <= before, "a spooled MIME part outlived its package or a failed parse"


@fuzz(150)
@given(case=bodies_and_types())
def test_what_parses_survives_the_writers_round_trip(case):
    body, content_type = case
    first = parse([body], content_type, 64)
    if isinstance(first, SoapFault):
        return
    try:
        ct, stream = mtom_response(first.root, list(first.attachments.values()))
        again = parse(list(stream), ct, 64)
        assert not isinstance(again, SoapFault), again.reason
        assert outcome(again)[1:] == (first.root, 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
                                      outcome(first)[3])
    finally:
        first.close()


@fuzz(200)
@given(
    body=st.one_of(st.binary(max_size=2048), st.sampled_from(BODIES)),
    content_type=st.one_of(
        st.sampled_from(CONTENT_TYPES),
        st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=200).map(lambda t: "multipart/related;" + t),
    ),
)
def test_any_body_under_any_multipart_header(body, content_type):
    before = spooled()
    outcome(parse([body], content_type, 16))
    assert spooled() <= before
