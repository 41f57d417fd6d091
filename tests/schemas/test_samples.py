"""Our XSDs accept exactly what the official IHE / OASIS XSDs accept, on the NIST testkit messages,
on systematic mutations of them, and on every class ebRIM lets into a RegistryObjectList; and zeep,
built from our WSDLs, reads and writes every one of those messages without loss."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import zeep
from lxml import etree

from tests.schemas.schema_sets import (
    LCM,
    OFFICIAL,
    OURS,
    QUERY,
    RIM,
    Sample,
    nist_samples,
    official,
    ours,
)

SAMPLES = nist_samples()


def agree(root: etree._Element) -> bool:
    """Validity of ``root`` under our schemas, asserting the official schemas give the same answer."""
    tree = etree.ElementTree(root)
    mine, theirs = ours().validate(tree), official().validate(tree)
    assert mine == theirs, (
        mine,
        theirs,
        str(ours().error_log.last_error),
        str(official().error_log.last_error),
    )
    return mine


def test_the_testkit_messages_are_all_found():
    kinds = Counter(etree.QName(s.root).localname for s in SAMPLES)
    assert kinds["AdhocQueryRequest"] >= 140
    assert kinds["SubmitObjectsRequest"] >= 16
    assert kinds["ProvideAndRegisterDocumentSetRequest"] >= 15
    assert kinds["RemoveObjectsRequest"] >= 33
    assert kinds["RetrieveDocumentSetRequest"] >= 32
    assert kinds["RetrieveImagingDocumentSetRequest"] >= 50
    assert kinds["RetrieveDocumentSetResponse"] >= 25


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.source for s in SAMPLES])
def test_nist_message_gets_the_same_verdict_from_ours_and_the_official_schemas(sample: Sample):
    agree(sample.root)


def test_valid_testkit_messages_are_valid_in_both():
    verdicts = Counter(agree(s.root) for s in SAMPLES)
    # the only invalid ones are example responses whose Document is the placeholder "..."
    assert verdicts[False] <= 3
    assert verdicts[True] >= 290


# --- mutations: the same verdicts on near-misses -------------------------------------------------

LONG = "x" * 300


def mutate(root: etree._Element, rng: random.Random) -> str:
    """Change ``root`` in place in one way a sender might get wrong; say how."""
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    target = rng.choice(elements[1:] or elements)
    parent = target.getparent()
    kind = rng.choice(
        [
            "drop",
            "duplicate",
            "drop-attr",
            "rename",
            "move-first",
            "long-value",
            "bad-boolean",
            "extra-attr",
            "text",
        ]
    )
    if kind == "drop" and parent is not None:
        parent.remove(target)
    elif kind == "duplicate" and parent is not None:
        target.addnext(etree.fromstring(etree.tostring(target)))
    elif kind == "drop-attr" and target.attrib:
        del target.attrib[rng.choice(sorted(target.attrib))]
    elif kind == "rename":
        other = rng.choice(elements)
        target.tag = other.tag
    elif kind == "move-first" and parent is not None:
        parent.insert(0, target)
    elif kind == "long-value" and target.attrib:
        target.set(rng.choice(sorted(target.attrib)), LONG)
    elif kind == "bad-boolean":
        target.set(rng.choice(["returnComposedObjects", "isOpaque", "federated", "createReplica"]), "maybe")
    elif kind == "extra-attr":
        target.set("unexpected", "1")
    elif kind == "text":
        target.text = LONG if len(target) == 0 else "stray text"
    else:
        return "none"
    return kind


def test_mutated_messages_get_the_same_verdict_from_both():
    rng = random.Random(20240531)
    outcomes = Counter()
    for sample in SAMPLES:
        for _ in range(6):
            root = sample.root
            kind = mutate(root, rng)
            outcomes[(kind, agree(root))] += 1
    # the mutations reach both verdicts, so agreement is not vacuous
    assert sum(n for (kind, valid), n in outcomes.items() if not valid) > 500
    assert sum(n for (kind, valid), n in outcomes.items() if valid) > 300


# --- what a RegistryObjectList may hold -----------------------------------------------------------

R = f'xmlns:rim="{RIM}"'
MINIMAL = {
    "Identifiable": '<rim:Identifiable id="i"/>',
    "ObjectRef": '<rim:ObjectRef id="i" createReplica="true"/>',
    "RegistryObject": '<rim:RegistryObject id="i"/>',
    "AdhocQuery": '<rim:AdhocQuery id="i"><rim:QueryExpression queryLanguage="q">x</rim:QueryExpression></rim:AdhocQuery>',
    "Association": '<rim:Association id="i" associationType="t" sourceObject="s" targetObject="o"/>',
    "AuditableEvent": '<rim:AuditableEvent id="i" eventType="e" timestamp="2024-01-01T00:00:00Z" user="u" '
    'requestId="r"><rim:affectedObjects><rim:ObjectRef id="o"/></rim:affectedObjects></rim:AuditableEvent>',
    "Classification": '<rim:Classification id="i" classifiedObject="o"/>',
    "ClassificationNode": '<rim:ClassificationNode id="i" code="c"><rim:ClassificationNode id="j"/></rim:ClassificationNode>',
    "ClassificationScheme": '<rim:ClassificationScheme id="i" isInternal="true" nodeType="n"/>',
    "ExternalIdentifier": '<rim:ExternalIdentifier id="i" registryObject="o" identificationScheme="s" value="v"/>',
    "ExternalLink": '<rim:ExternalLink id="i" externalURI="http://example.org/"/>',
    "ExtrinsicObject": '<rim:ExtrinsicObject id="i" mimeType="text/plain"><rim:ContentVersionInfo/></rim:ExtrinsicObject>',
    "Organization": '<rim:Organization id="i"><rim:Address city="c"/><rim:TelephoneNumber number="1"/>'
    '<rim:EmailAddress address="a@b"/></rim:Organization>',
    "RegistryPackage": '<rim:RegistryPackage id="i"><rim:RegistryObjectList><rim:ObjectRef id="o"/>'
    "</rim:RegistryObjectList></rim:RegistryPackage>",
    "Service": '<rim:Service id="i"><rim:ServiceBinding id="b" service="i"/></rim:Service>',
    "ServiceBinding": '<rim:ServiceBinding id="i" service="s"><rim:SpecificationLink id="l" serviceBinding="i" '
    'specificationObject="o"/></rim:ServiceBinding>',
    "SpecificationLink": '<rim:SpecificationLink id="i" serviceBinding="b" specificationObject="o">'
    "<rim:UsageDescription/><rim:UsageParameter>p</rim:UsageParameter></rim:SpecificationLink>",
    "Person": '<rim:Person id="i"><rim:PersonName lastName="L"/></rim:Person>',
    "User": '<rim:User id="i"><rim:Address/><rim:PersonName firstName="F"/></rim:User>',
    "Registry": '<rim:Registry id="i" operator="o" specificationVersion="3.0" conformanceProfile="registryFull"/>',
    "Federation": '<rim:Federation id="i" replicationSyncLatency="PT1H"/>',
    "Subscription": '<rim:Subscription id="i" selector="s"><rim:NotifyAction endPoint="mailto:a@b"/></rim:Subscription>',
}


def identifiable_substitution_group() -> set[str]:
    """Names of the official rim.xsd elements that may stand for rim:Identifiable."""
    root = etree.parse(str(OFFICIAL / "schema" / "ebRS" / "rim.xsd")).getroot()
    heads = {
        e.get("name"): (e.get("substitutionGroup") or "").rpartition(":")[2]
        for e in root.iterfind("{*}element")
    }
    members = {"Identifiable"}
    while True:
        more = {name for name, head in heads.items() if head in members} - members
        if not more:
            return members
        members |= more


def submit(objects: str) -> etree._Element:
    xml = f'<lcm:SubmitObjectsRequest xmlns:lcm="{LCM}" {R}><rim:RegistryObjectList>{objects}</rim:RegistryObjectList></lcm:SubmitObjectsRequest>'
    return etree.fromstring(xml.encode())


def test_every_identifiable_class_of_ebrim_is_covered():
    assert set(MINIMAL) == identifiable_substitution_group()


@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_registry_object_list_accepts_each_identifiable_class_in_both(name):
    assert agree(submit(MINIMAL[name]))


def test_registry_object_list_accepts_them_all_mixed_in_both():
    assert agree(submit("".join(MINIMAL.values()) + "".join(reversed(list(MINIMAL.values())))))


def test_xsi_type_may_name_a_derived_class_in_both():
    xsi = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    assert agree(
        submit(f'<rim:Identifiable {xsi} xsi:type="rim:ExtrinsicObjectType" id="i" mimeType="a/b"/>')
    )
    assert agree(
        submit(f'<rim:RegistryObject {xsi} xsi:type="rim:ClassificationType" id="i" classifiedObject="o"/>')
    )
    assert not agree(
        submit(f'<rim:ExtrinsicObject {xsi} xsi:type="rim:ClassificationType" id="i" classifiedObject="o"/>')
    )


@pytest.mark.parametrize(
    "objects",
    [
        '<rim:Notification id="i" subscription="s"><rim:RegistryObjectList/></rim:Notification>',
        '<rim:Slot name="s"><rim:ValueList/></rim:Slot>',
        "<rim:LocalizedString value='v'/>",
        '<rim:ExtrinsicObject id="i"><rim:Name/><rim:Slot name="late"><rim:ValueList/></rim:Slot></rim:ExtrinsicObject>',
        '<rim:ExtrinsicObject id="i"><rim:Slot name="s"/></rim:ExtrinsicObject>',
        '<rim:Classification classifiedObject="o"/>',
        f'<rim:ExtrinsicObject id="i"><rim:Slot name="s"><rim:ValueList><rim:Value>{LONG}</rim:Value></rim:ValueList></rim:Slot></rim:ExtrinsicObject>',
        f'<rim:ExtrinsicObject id="i"><rim:Name><rim:LocalizedString value="{"n" * 1025}"/></rim:Name></rim:ExtrinsicObject>',
        '<rim:ExtrinsicObject id="i"><rim:Name><rim:LocalizedString xml:lang="not a language" value="n"/></rim:Name></rim:ExtrinsicObject>',
    ],
)
def test_what_ebrim_forbids_is_rejected_by_both(objects):
    assert not agree(submit(objects))


def test_stored_query_without_response_option_is_rejected_by_both():
    xml = f'<query:AdhocQueryRequest xmlns:query="{QUERY}" {R}><rim:AdhocQuery id="q"/></query:AdhocQueryRequest>'
    assert not agree(etree.fromstring(xml.encode()))


# --- zeep reads and writes every message through our WSDLs ---------------------------------------


@pytest.fixture(scope="module")
def zeep_clients() -> dict[str, zeep.Client]:
    names = ["XDS.b_DocumentRegistry.wsdl", "XDS.b_DocumentRepository.wsdl", "XCARespondingGateway.wsdl"]
    return {name: zeep.Client(str(OURS / name)) for name in names}


def client_for(clients: dict[str, zeep.Client], tag: str) -> zeep.Client:
    namespace = etree.QName(tag).namespace
    if namespace == LCM:
        return clients["XDS.b_DocumentRegistry.wsdl"]
    if tag.endswith("}ProvideAndRegisterDocumentSetRequest"):
        return clients["XDS.b_DocumentRepository.wsdl"]
    return clients["XCARespondingGateway.wsdl"]


def content(root: etree._Element) -> list[tuple[str, str, dict[str, str]]]:
    """Every element's name, text and attributes, in document order; elements with none of these and
    no children (an empty rim:Description, meaning no description) are left out: zeep omits them."""
    return [
        (e.tag, (e.text or "").strip(), dict(e.attrib))
        for e in root.iter()
        if isinstance(e.tag, str) and (len(e) or e.attrib or (e.text or "").strip())
    ]


def test_zeep_reads_and_writes_every_valid_testkit_message_without_loss(zeep_clients):
    checked = 0
    for sample in SAMPLES:
        root = sample.root
        if not agree(root):
            continue
        for document in root.iter("{*}Document"):
            # example responses hold "..." where the document goes; libxml2 takes it for base64
            if document.text and document.text.strip() == "...":
                document.text = "ZG9jdW1lbnQ="
        client = client_for(zeep_clients, root.tag)
        element = client.get_element(root.tag)
        value = element.parse(root, client.wsdl.types)
        holder = etree.Element("holder")
        try:
            element.render(holder, value)
        except zeep.exceptions.ValidationError as error:
            # zeep reads an empty required string element (<RepositoryUniqueId/>) as None and then
            # refuses to write it back; that is zeep's own rule, whatever the schema says
            empty = {etree.QName(e).localname for e in root.iter() if isinstance(e.tag, str) and not len(e)}
            empty &= {etree.QName(e).localname for e in root.iter() if isinstance(e.tag, str) and not e.text}
            assert any(f"Missing element {name} " in str(error) for name in empty), (sample.source, error)
            continue
        written = holder[0]
        assert agree(written), sample.source
        before, after = content(root), content(written)
        assert [(tag, text) for tag, text, _ in before] == [(tag, text) for tag, text, _ in after], (
            sample.source
        )
        for (_, _, attributes), (_, _, rendered) in zip(before, after, strict=True):
            # zeep writes schema defaults out; it never drops or changes what was there
            assert attributes.items() <= rendered.items(), sample.source
        checked += 1
    assert checked >= 290
