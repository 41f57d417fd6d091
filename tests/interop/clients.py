"""Third-party SOAP clients for the interop tests: zeep built from a WSDL (ours or IHE's official).

An operation is chosen by its WS-Addressing action, never by its name, so the same helper drives any
WSDL that offers the transaction: our served ``?wsdl``, our file, or an official IHE/IPF WSDL (their
operation, binding and port names differ). zeep puts wsa:Action/MessageID/To in the header itself
when the WSDL declares wsam:Action (or wsaw:Action), so no WS-Addressing plugin is added.

ITI-18 Registry Stored Query request per ITI TF-2 3.18.4.1.2; slot value syntax per ITI TF-2
3.18.4.1.2.3.5 (single-quoted strings, parenthesised lists).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zeep
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder
from zeep.plugins import HistoryPlugin, Plugin
from zeep.transports import Transport
from zeep.xsd import ComplexType

from xds.client.plugins import RIM_SUBSTITUTES, ContentTypeAction, RimSubstitutionGroups

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI38 = "urn:ihe:iti:2007:CrossGatewayQuery"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
OFFICIAL_WSDL = CORPUS / "schemas" / "ihe-iti-rahulsom" / "iti" / "wsdl"
# rahulsom's XDS.b_DocumentRegistry.wsdl imports HL7v3 schemas that are not there: IPF's
# per-transaction WSDLs stand in for the registry.
IPF_WSDL = CORPUS / "schemas" / "ipf" / "commons" / "ihe" / "xds" / "src" / "main" / "resources" / "wsdl"
# node-soap, installed by tests/bootstrap.sh from node/package.json
NODE_DIR = Path(__file__).resolve().parent / "node"


def build_client(
    wsdl: str | Path,
    *,
    transport: Transport | None = None,
    timeout: float = 30,
    plugins: Iterable[Plugin] = (),
) -> zeep.Client:
    """A zeep client from a WSDL URL (``http://.../xds/registry?wsdl``) or a local file.

    With an official WSDL (ebRIM's substitution groups) the client also gets
    :class:`~xds.client.plugins.RimSubstitutionGroups` and :func:`repair_rim_types`.
    """
    client = zeep.Client(
        str(wsdl),
        transport=transport or Transport(timeout=timeout, operation_timeout=timeout),
        plugins=[ContentTypeAction(), *plugins],
    )
    if uses_substitution_groups(client):
        client.plugins.append(RimSubstitutionGroups())
        repair_rim_types(client)
    return client


def uses_substitution_groups(client: zeep.Client) -> bool:
    """True when rim:RegistryObjectList is a list of rim:Identifiable (the OASIS schema)."""
    object_list = client.get_type(f"{{{RIM}}}RegistryObjectListType")
    return [name for name, _ in object_list.elements] == ["Identifiable"]


def repair_rim_types(client: zeep.Client) -> None:
    """Give ClassificationType and ExternalIdentifierType back what zeep loses of them.

    In the OASIS ebRIM schema RegistryObjectType (which extends IdentifiableType) refers to
    rim:Classification and rim:ExternalIdentifier, whose types extend RegistryObjectType. zeep 4
    resolves that cycle with the half-built RegistryObjectType, so both types come out without
    IdentifiableType's content: no rim:Slot (codingScheme!), no ``id``, no ``home``. This puts
    IdentifiableType's elements and attributes back in front of theirs, in place, so that every
    element of those types (nested or global) is repaired.
    """
    identifiable = client.get_type(f"{{{RIM}}}IdentifiableType")
    inherited_elements = list(identifiable._element or [])
    for name in ("ClassificationType", "ExternalIdentifierType"):
        xsd_type = client.get_type(f"{{{RIM}}}{name}")
        if not isinstance(xsd_type, ComplexType) or "id" in dict(xsd_type.attributes):
            continue
        element = xsd_type._element
        repaired = element.clone(element.name, element.min_occurs, element.max_occurs)
        repaired[0:0] = inherited_elements
        xsd_type._element = repaired
        xsd_type._attributes = list(identifiable._attributes) + list(xsd_type._attributes)
        for cached in ("elements", "elements_nested", "attributes", "_attributes_unwrapped"):
            xsd_type.__dict__.pop(cached, None)


def operation_for(client: zeep.Client, action: str) -> tuple[str, str]:
    """(binding QName, operation name) of the operation whose input wsa:Action is ``action``."""
    for binding_name, binding in client.wsdl.bindings.items():
        for name, operation in binding._operations.items():
            if operation.abstract.wsa_action == action:
                return binding_name, name
    raise LookupError(f"The WSDL offers no operation with wsa:Action {action}")


def service_for(client: zeep.Client, action: str, address: str | None = None) -> tuple[Any, str]:
    """(service proxy, operation name) for ``action``; ``address`` overrides the WSDL's address."""
    binding_name, name = operation_for(client, action)
    if address is None:
        for service in client.wsdl.services.values():
            for port in service.ports.values():
                if port.binding.name.text == binding_name:
                    address = port.binding_options["address"]
    if address is None:
        raise LookupError(f"No port of the WSDL uses binding {binding_name}; give an address")
    return client.create_service(binding_name, address), name


def value_list(client: zeep.Client, values: Iterable[str]) -> dict[str, Any]:
    """zeep's argument for a rim:ValueList holding ``values``.

    The OASIS schema writes the list as a repeated sequence, (Value)*, which zeep exposes as
    ``_value_1``; ours writes Value* (same XML), which zeep exposes as ``Value``.
    """
    values = list(values)
    sequence = client.get_type(f"{{{RIM}}}ValueListType")._element
    if sequence.max_occurs == 1:
        return {"Value": values}
    return {"_value_1": [{"Value": v} for v in values]}


def quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def find_documents_slots(patient_id: str, statuses: Iterable[str] = (APPROVED,)) -> dict[str, list[str]]:
    """FindDocuments parameters: $XDSDocumentEntryPatientId and $XDSDocumentEntryStatus."""
    return {
        "$XDSDocumentEntryPatientId": [quoted(patient_id)],
        "$XDSDocumentEntryStatus": ["(" + ",".join(quoted(s) for s in statuses) + ")"],
    }


def adhoc_query_request(
    client: zeep.Client,
    query_id: str,
    slots: Mapping[str, Iterable[str]],
    *,
    return_type: str = "LeafClass",
    home: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of a query:AdhocQueryRequest for a stored query."""
    adhoc_query: dict[str, Any] = {
        "id": query_id,
        "Slot": [{"name": name, "ValueList": value_list(client, values)} for name, values in slots.items()],
    }
    if home:
        adhoc_query["home"] = home
    return {
        "ResponseOption": {"returnType": return_type, "returnComposedObjects": True},
        "AdhocQuery": adhoc_query,
    }


def iti18_message(
    client: zeep.Client, patient_id: str, *, action: str = ITI18, return_type: str = "LeafClass"
) -> etree._Element:
    """The SOAP envelope zeep would send for a FindDocuments query (not sent)."""
    service, name = service_for(client, action, address="http://localhost/unused")
    request = adhoc_query_request(
        client, FIND_DOCUMENTS, find_documents_slots(patient_id), return_type=return_type
    )
    return client.create_message(service, name, **request)


@dataclass
class SoapReply:
    status_code: int
    content_type: str
    envelope: etree._Element
    request: etree._Element | None = None  # the envelope sent, when the client reports it

    @property
    def action(self) -> str | None:
        return self.envelope.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}Action")

    @property
    def relates_to(self) -> str | None:
        return self.envelope.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}RelatesTo")

    @property
    def body(self) -> etree._Element:
        """The first child of soap:Body (the response element, or soap:Fault)."""
        return self.envelope.find(f"{{{SOAP12}}}Body")[0]


def send(
    client: zeep.Client, action: str, request: Mapping[str, Any], *, address: str | None = None
) -> SoapReply:
    """Send ``request`` as the operation for ``action``; return the reply as XML, faults included.

    The reply is read with lxml rather than zeep's own deserialiser, so that a zeep client built from
    the official WSDL (whose rim:RegistryObjectList zeep cannot read: it relies on a substitution
    group) still yields the full response.
    """
    service, name = service_for(client, action, address)
    with client.settings(raw_response=True, strict=False):
        response = service[name](**request)
    content_type = response.headers.get("Content-Type", "")
    content = response.content
    if content_type.lower().startswith("multipart/related"):
        content = MultipartDecoder(content, content_type).parts[0].content
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    return SoapReply(response.status_code, content_type, etree.fromstring(content, parser))


def send_iti18(
    client: zeep.Client,
    patient_id: str,
    *,
    address: str | None = None,
    action: str = ITI18,
    return_type: str = "LeafClass",
    statuses: Iterable[str] = (APPROVED,),
    home: str | None = None,
) -> SoapReply:
    """Send an ITI-18 FindDocuments (or, with ``action=ITI38``, the same as ITI-38) for ``patient_id``."""
    request = adhoc_query_request(
        client, FIND_DOCUMENTS, find_documents_slots(patient_id, statuses), return_type=return_type, home=home
    )
    return send(client, action, request, address=address)


# --- node-soap --------------------------------------------------------------------------------------


def node_available() -> bool:
    """node-soap tests are skipped only without ``node``; without node-soap they fail, saying how
    to install it (tests/bootstrap.sh), rather than pass unnoticed."""
    return shutil.which("node") is not None


def require_node_soap() -> None:
    if not (NODE_DIR / "node_modules" / "soap").is_dir():
        raise AssertionError(f"node-soap is not installed in {NODE_DIR}: run tests/bootstrap.sh")


def node_soap_stored_query(
    wsdl_url: str,
    operation: str,
    slots: Mapping[str, Iterable[str]],
    *,
    action: str = ITI18,
    query_id: str = FIND_DOCUMENTS,
    address: str | None = None,
    timeout: float = 60,
) -> SoapReply:
    """node-soap, built from ``wsdl_url``, sends one stored query as ``operation`` (its WSDL name)."""
    require_node_soap()
    arguments = [wsdl_url, operation, action, query_id, json.dumps({k: list(v) for k, v in slots.items()})]
    if address:
        arguments.append(address)
    done = subprocess.run(
        ["node", str(NODE_DIR / "stored_query.js"), *arguments],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"node-soap failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    sent = etree.fromstring(result["request"].encode(), parser) if result.get("request") else None
    return SoapReply(
        result["status"], result["contentType"], etree.fromstring(result["response"].encode(), parser), sent
    )


# --- ITI-42 / ITI-41 metadata, written with zeep's types ------------------------------------------
# Hand-written from ITI TF-3 4.2 (not through our ebRIM codec): the client must stand on its own.

STABLE_DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
DE_CODES = {  # classification scheme -> (code, coding scheme, display name)
    "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a": ("IMG", "1.3.6.1.4.1.19376.1.2.6.1", "Imaging"),  # class
    "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f": (
        "N",
        "2.16.840.1.113883.5.25",
        "Normal",
    ),  # confidentiality
    "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d": (
        "urn:ihe:rad:TEXT",
        "1.2.840.10008.2.6.1",
        "TEXT",
    ),  # format
    "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1": (
        "Outpatient",
        "Connect-a-thon healthcareFacilityTypeCodes",
        "Outpatient",
    ),  # facility type
    "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead": (
        "Radiology",
        "Connect-a-thon practiceSettingCodes",
        "Radiology",
    ),  # practice setting
    "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983": (
        "18748-4",
        "2.16.840.1.113883.6.1",
        "Diagnostic imaging study",
    ),
}
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
SOURCE_ID = "1.3.6.1.4.1.21367.2005.3.7"


def new_oid() -> str:
    """A fresh OID under 2.25 (ITU-T X.667: a UUID as an integer)."""
    return f"2.25.{uuid.uuid4().int}"


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass
class DocumentEntry:
    """What the tests say about one document; hash/size/repository only for ITI-42."""

    unique_id: str
    mime_type: str = "text/plain"
    hash: str | None = None
    size: int | None = None
    repository_unique_id: str | None = None
    symbol: str = "Document01"


def repeated(client: zeep.Client, type_name: str, child: str, items: list[Any]) -> dict[str, Any]:
    """zeep's argument for ``child*`` of ``type_name``: the OASIS schema writes some lists as a
    repeated sequence (zeep's ``_value_1``), ours as a repeated element."""
    sequence = client.get_type(f"{{{RIM}}}{type_name}")._element
    if sequence.max_occurs == 1:
        return {child: items}
    return {"_value_1": [{child: item} for item in items]}


def localized(client: zeep.Client, text: str) -> dict[str, Any]:
    return repeated(client, "InternationalStringType", "LocalizedString", [{"value": text}])


def slot(client: zeep.Client, name: str, *values: str) -> dict[str, Any]:
    return {"name": name, "ValueList": value_list(client, values)}


def code(client: zeep.Client, scheme: str, classified: str, value: tuple[str, str, str]) -> dict[str, Any]:
    node, coding_scheme, display = value
    return {
        "id": new_uuid(),
        "classificationScheme": scheme,
        "classifiedObject": classified,
        "nodeRepresentation": node,
        "Slot": [slot(client, "codingScheme", coding_scheme)],
        "Name": localized(client, display),
    }


def identifier(
    client: zeep.Client, scheme: str, registry_object: str, value: str, name: str
) -> dict[str, Any]:
    return {
        "id": new_uuid(),
        "identificationScheme": scheme,
        "registryObject": registry_object,
        "value": value,
        "Name": localized(client, name),
    }


def object_list(client: zeep.Client, objects: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """zeep's argument for a rim:RegistryObjectList of (element name, content) pairs: a choice in
    our schema, typed rim:Identifiable values in the OASIS one (see RimSubstitutionGroups)."""
    if not uses_substitution_groups(client):
        return {"_value_1": [{kind: content} for kind, content in objects]}
    type_of = {element: type_name for type_name, element in RIM_SUBSTITUTES.items()}
    return {
        "Identifiable": [client.get_type(f"{{{RIM}}}{type_of[kind]}")(**content) for kind, content in objects]
    }


def submit_objects_request(
    client: zeep.Client, patient_id: str, entries: list[DocumentEntry]
) -> dict[str, Any]:
    """Keyword arguments of an lcm:SubmitObjectsRequest: a SubmissionSet holding ``entries``
    (ITI TF-3 4.2.3.1-4.2.3.3), each with a HasMember association (4.2.2.1.1)."""
    objects: list[tuple[str, dict[str, Any]]] = []
    for entry in entries:
        slots = [
            slot(client, "creationTime", "20240102030405"),
            slot(client, "languageCode", "en-CA"),
            slot(client, "sourcePatientId", f"MRN-{entry.symbol}^^^&1.2.3.4&ISO"),
        ]
        if entry.hash is not None:
            slots += [
                slot(client, "hash", entry.hash),
                slot(client, "size", str(entry.size)),
                slot(client, "repositoryUniqueId", entry.repository_unique_id or ""),
            ]
        objects.append(
            (
                "ExtrinsicObject",
                {
                    "id": entry.symbol,
                    "mimeType": entry.mime_type,
                    "objectType": STABLE_DOCUMENT_ENTRY,
                    "Slot": slots,
                    "Name": localized(client, "Interop test document"),
                    "Classification": [code(client, s, entry.symbol, v) for s, v in DE_CODES.items()],
                    "ExternalIdentifier": [
                        identifier(
                            client, DE_PATIENT_ID, entry.symbol, patient_id, "XDSDocumentEntry.patientId"
                        ),
                        identifier(
                            client, DE_UNIQUE_ID, entry.symbol, entry.unique_id, "XDSDocumentEntry.uniqueId"
                        ),
                    ],
                },
            )
        )
    ss = "SubmissionSet01"
    objects.append(
        (
            "RegistryPackage",
            {
                "id": ss,
                "Slot": [slot(client, "submissionTime", "20240102030500")],
                "Name": localized(client, "Interop test submission"),
                "Classification": [
                    code(
                        client, SS_CONTENT_TYPE, ss, ("Imaging", "Connect-a-thon contentTypeCodes", "Imaging")
                    )
                ],
                "ExternalIdentifier": [
                    identifier(client, SS_UNIQUE_ID, ss, new_oid(), "XDSSubmissionSet.uniqueId"),
                    identifier(client, SS_SOURCE_ID, ss, SOURCE_ID, "XDSSubmissionSet.sourceId"),
                    identifier(client, SS_PATIENT_ID, ss, patient_id, "XDSSubmissionSet.patientId"),
                ],
            },
        )
    )
    objects.append(
        (
            "Classification",
            {"id": new_uuid(), "classifiedObject": ss, "classificationNode": SUBMISSION_SET_NODE},
        )
    )
    for i, entry in enumerate(entries):
        objects.append(
            (
                "Association",
                {
                    "id": f"HasMember{i}",
                    "associationType": HAS_MEMBER,
                    "sourceObject": ss,
                    "targetObject": entry.symbol,
                    "Slot": [slot(client, "SubmissionSetStatus", "Original")],
                },
            )
        )
    return {"RegistryObjectList": object_list(client, objects)}


# --- one call, its envelopes seen through zeep's HistoryPlugin ---------------------------------------


@dataclass
class Exchange:
    """An operation called through zeep: zeep's answer and both envelopes as zeep saw them."""

    result: Any
    sent: etree._Element
    received: etree._Element
    received_headers: Mapping[str, str]

    def header(self, envelope: etree._Element, name: str) -> str | None:
        return envelope.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}{name}")

    @property
    def message_id(self) -> str | None:
        return self.header(self.sent, "MessageID")

    @property
    def action(self) -> str | None:
        return self.header(self.received, "Action")

    @property
    def relates_to(self) -> str | None:
        return self.header(self.received, "RelatesTo")

    @property
    def body(self) -> etree._Element:
        return self.received.find(f"{{{SOAP12}}}Body")[0]


def call(
    client: zeep.Client, action: str, request: Mapping[str, Any], *, address: str | None = None
) -> Exchange:
    """Call the operation for ``action`` with zeep's own serialiser and deserialiser."""
    history = next((p for p in client.plugins if isinstance(p, HistoryPlugin)), None)
    if history is None:
        history = HistoryPlugin()
        client.plugins.insert(0, history)
    service, name = service_for(client, action, address)
    result = service[name](**request)
    return Exchange(
        result,
        history.last_sent["envelope"],
        history.last_received["envelope"],
        history.last_received["http_headers"],
    )
