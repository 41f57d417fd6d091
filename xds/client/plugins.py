"""zeep plugins that make zeep, built from an IHE WSDL, talk to an XDS.b actor correctly.

* :class:`ContentTypeAction`: the SOAP 1.2 ``action`` media-type parameter equal to wsa:Action.
* :class:`RimSubstitutionGroups`: ebRIM 3.0 objects under their own element names, although zeep
  does not implement XML Schema substitution groups.

Neither is needed with the WSDLs a node serves (``<endpoint>?wsdl``); both are needed with the
official IHE WSDLs (and IPF's, dcm4chee's), which :class:`xds.client.XdsClient` does not use but an
integrator's own zeep client may.
"""

from __future__ import annotations

from lxml import etree
from zeep.plugins import Plugin

from xds.namespaces import RIM, SOAP12, WSA, XSI

_XSI_TYPE = f"{{{XSI}}}type"
_OBJECT_LIST = f"{{{RIM}}}RegistryObjectList"
# the heads of the substitution groups that rim:RegistryObjectList refers to (ebRIM 3.0 rim.xsd)
_HEADS = (f"{{{RIM}}}Identifiable", f"{{{RIM}}}RegistryObject")

# ebRIM 3.0 rim.xsd: the members of the rim:Identifiable substitution group, by their type
RIM_SUBSTITUTES = {
    "AdhocQueryType": "AdhocQuery",
    "AssociationType1": "Association",
    "AuditableEventType": "AuditableEvent",
    "ClassificationNodeType": "ClassificationNode",
    "ClassificationSchemeType": "ClassificationScheme",
    "ClassificationType": "Classification",
    "ExternalIdentifierType": "ExternalIdentifier",
    "ExternalLinkType": "ExternalLink",
    "ExtrinsicObjectType": "ExtrinsicObject",
    "FederationType": "Federation",
    "ObjectRefType": "ObjectRef",
    "OrganizationType": "Organization",
    "PersonType": "Person",
    "RegistryObjectType": "RegistryObject",
    "RegistryPackageType": "RegistryPackage",
    "RegistryType": "Registry",
    "ServiceBindingType": "ServiceBinding",
    "ServiceType": "Service",
    "SpecificationLinkType": "SpecificationLink",
    "SubscriptionType": "Subscription",
    "UserType": "User",
}
_TYPE_OF = {element: type_name for type_name, element in RIM_SUBSTITUTES.items()}


class ContentTypeAction(Plugin):
    """Make the SOAP 1.2 ``action`` media-type parameter agree with wsa:Action.

    zeep writes ``action="<soapAction>"`` into Content-Type, and ``action="None"`` when the WSDL's
    soap12:operation has no soapAction (IPF's WSDLs, soapActionRequired="false"). A receiver that
    holds the two to be equal (WS-Addressing 1.0 SOAP Binding, section 4) rejects such a request.
    This sets the parameter to the envelope's wsa:Action.
    """

    def egress(self, envelope, http_headers, operation, binding_options):
        action = envelope.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}Action")
        content_type = http_headers.get("Content-Type", "")
        if action and content_type.startswith("application/soap+xml"):
            kept = [p.strip() for p in content_type.split(";") if not p.strip().startswith("action=")]
            http_headers["Content-Type"] = "; ".join(kept) + f'; action="{action}"'
        return envelope, http_headers


class RimSubstitutionGroups(Plugin):
    """ebRIM objects in a rim:RegistryObjectList written and read under their own element names.

    The OASIS ebRIM 3.0 schema declares ``RegistryObjectList`` as a list of ``rim:Identifiable``,
    the head of a substitution group (``rim:ExtrinsicObject``, ``rim:RegistryPackage``,
    ``rim:Association``, ...). zeep does not implement substitution groups: given an
    ``ExtrinsicObjectType`` value it writes ``<rim:Identifiable xsi:type="rim:ExtrinsicObjectType">``,
    which ITI TF-3 4.2 metadata does not allow, and it cannot read a response holding
    ``rim:ExtrinsicObject``. On the way out this renames each typed head element to the member of
    the group for its type; on the way in it does the reverse for the children of a
    RegistryObjectList, so that zeep's xsi:type handling reads them.
    """

    def egress(self, envelope, http_headers, operation, binding_options):
        for element in list(envelope.iter(*_HEADS)):
            type_name = element.get(_XSI_TYPE)
            if not type_name:
                continue
            prefix, _, local = type_name.rpartition(":")
            if element.nsmap.get(prefix or None) != RIM or local not in RIM_SUBSTITUTES:
                continue
            element.tag = f"{{{RIM}}}{RIM_SUBSTITUTES[local]}"
            del element.attrib[_XSI_TYPE]
        etree.cleanup_namespaces(envelope)
        return envelope, http_headers

    def ingress(self, envelope, http_headers, operation):
        for object_list in envelope.iter(_OBJECT_LIST):
            for child in list(object_list):
                if not isinstance(child.tag, str):
                    continue
                qname = etree.QName(child)
                if qname.namespace != RIM or qname.localname not in _TYPE_OF:
                    continue
                type_name = _TYPE_OF[qname.localname]
                prefix = next((p for p, uri in child.nsmap.items() if p and uri == RIM), None)
                if prefix is None:  # ebRIM as the default namespace: declare a prefix on a copy
                    prefix = "rim" if "rim" not in child.nsmap else "rim3"
                    copy = etree.Element(child.tag, dict(child.attrib), nsmap={**child.nsmap, prefix: RIM})
                    copy.text, copy.tail = child.text, child.tail
                    copy.extend(list(child))
                    object_list.replace(child, copy)
                    child = copy
                child.tag = _HEADS[0]
                child.set(_XSI_TYPE, f"{prefix}:{type_name}")
        return envelope, http_headers
