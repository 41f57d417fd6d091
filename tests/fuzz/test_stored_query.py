"""ITI-18 parameter parsing (xds.registry.stored_query) on mutated NIST AdhocQueryRequests, run
in process against the fuzz node's registry.

Properties: the value syntax parser returns values or ValueError, and reads back what a client
writes; a mutated query is always an AdhocQueryResponse, Success or Failure, each error coded;
nothing is logged at ERROR; the sentinel document is still found afterwards.
"""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz import seeds
from tests.fuzz.conftest import fuzz, leaks, tracebacks
from tests.fuzz.mutations import XML_SAFE, hostile_text, mutated_xml
from xds.metadata.rules import ErrorCode
from xds.namespaces import QUERY, RS
from xds.registry.stored_query import parse_code, parse_value, stored_query

pytestmark = seeds.needs_corpus

QUERIES = seeds.queries()
CODES = {c.value for c in ErrorCode}


@fuzz(300)
@given(text=st.one_of(hostile_text(), st.text(st.sampled_from("'(), ^&a1 \t"), max_size=40)))
def test_value_syntax_parser_returns_values_or_value_error(text):
    try:
        values = parse_value(text)
    except ValueError:
        return
    assert values and all(isinstance(v, str) for v in values)
    for v in values:
        try:
            code = parse_code(v)
        except ValueError:
            continue
        assert code.code


def _quote(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


@fuzz(200)
@given(values=st.lists(st.text(XML_SAFE, min_size=0, max_size=20), min_size=1, max_size=5))
def test_quoted_lists_read_back_what_a_client_wrote(values):
    assert parse_value("(" + ", ".join(_quote(v) for v in values) + ")") == values
    assert parse_value(_quote(values[0])) == [values[0]]


@fuzz(100)
@given(xml=mutated_xml(QUERIES, max_ops=6))
def test_mutated_queries_answer_success_or_coded_failure(intact, caplog, xml):
    registry = intact.registry
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = stored_query(registry.engine, etree.fromstring(xml), config=registry.settings)
    assert response.tag == f"{{{QUERY}}}AdhocQueryResponse"
    status = response.get("status", "").rsplit(":", 1)[-1]
    codes = [e.get("errorCode") for e in response.iter(f"{{{RS}}}RegistryError")]
    assert status in ("Success", "PartialSuccess", "Failure"), status
    assert set(codes) <= CODES, codes
    assert status != "Failure" or codes
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, seeds.PHI)
