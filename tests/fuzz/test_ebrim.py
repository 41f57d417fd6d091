"""The ebRIM 3.0 parser and the metadata rules (xds.metadata.ebrim, xds.metadata.rules) on mutated
NIST testkit submissions.

Properties: parsing and validation never raise, whatever the tree; every finding is a coded
RegistryError (an IHE error code, a severity, a location); what the parser made of an object can be
serialised into the registry's canonical fragment and read back to the same fragment.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz import seeds
from tests.fuzz.conftest import fuzz
from tests.fuzz.mutations import mutated_xml
from xds.metadata import ebrim
from xds.metadata.errors import ERROR, WARNING
from xds.metadata.rules import ErrorCode, Profile, validate_submission

pytestmark = seeds.needs_corpus

SUBMISSIONS = seeds.submissions() + seeds.provide_and_register_bodies()
CODES = {c.value for c in ErrorCode}


def assert_coded(errors) -> None:  # noqa: ANN001
    for e in errors:
        assert e.code in CODES, e
        assert e.severity in (ERROR, WARNING), e
        assert isinstance(e.context, str) and isinstance(e.location, str), e


@fuzz(250)
@given(xml=mutated_xml(SUBMISSIONS, max_ops=8), profile=st.sampled_from(list(Profile)))
def test_mutated_submissions_are_parsed_and_validated_into_coded_errors(xml, profile):
    submission = ebrim.parse_submit_objects_request(etree.fromstring(xml))
    assert_coded(submission.parse_errors)
    errors = validate_submission(submission, profile, patient_assigning_authority=seeds.AUTHORITY)
    assert_coded(errors)
    for obj in submission.objects():
        fragment = ebrim.serialize_fragment(obj)
        try:
            again = ebrim.parse_registry_object(etree.fromstring(fragment))
        except ValueError:
            continue  # not a clean object; the registry would have refused it
        assert ebrim.serialize_fragment(again) == fragment


@fuzz(150)
@given(xml=mutated_xml(SUBMISSIONS, max_ops=3, keep_root=False))
def test_any_root_element_is_a_coded_error_not_an_exception(xml):
    parsed = ebrim.parse_registry_object_list(etree.fromstring(xml))
    assert_coded(parsed.errors)
