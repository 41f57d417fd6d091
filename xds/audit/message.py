"""The DICOM audit message (PS3.15 A.5.1): a namespace-less ``AuditMessage`` in XML.

``AuditMessage`` holds, in schema order, one EventIdentification, one or more ActiveParticipant,
one AuditSourceIdentification and any number of ParticipantObjectIdentification. Builders for
each IHE transaction are in :mod:`xds.audit.events`; :func:`validate` checks a message against
``schema/AuditMessage.xsd`` (our XSD transcription of the A.5.1 RELAX NG schema).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lxml import etree

from xds.audit.codes import Coded

SCHEMA = Path(__file__).with_name("schema") / "AuditMessage.xsd"


@dataclass
class ActiveParticipant:
    user_id: str
    requestor: bool
    roles: list[Coded] = field(default_factory=list)
    alternative_user_id: str = ""
    user_name: str = ""
    network_access_point: str = ""
    kind: str = ""  # "person", "system" (a peer), "node" (this node): for the store's index, not in the XML

    @property
    def network_access_point_type(self) -> str:
        """"1" machine name, "2" IP address (PS3.15 A.5.1 NetworkAccessPointTypeCode)."""
        try:
            ipaddress.ip_address(self.network_access_point)
        except ValueError:
            return "1"
        return "2"


@dataclass
class ParticipantObject:
    object_id: str
    type_code: str  # "1" person, "2" system object
    role: str  # ParticipantObjectTypeCodeRole: "1" patient, "3" report, "20" job, "24" query ...
    id_type: Coded
    name: str = ""
    query: bytes | None = None  # ParticipantObjectQuery (base64 in the XML); excludes name
    details: list[tuple[str, bytes]] = field(default_factory=list)  # ParticipantObjectDetail type/value
    # DICOM object description (PS3.15 A.5.2.5): SOPClass elements with their instances
    sop_classes: dict[str, list[str]] = field(default_factory=dict)
    contains_study: list[str] = field(default_factory=list)


@dataclass
class AuditMessage:
    event_id: Coded
    action: str  # C R U D E
    outcome: int  # 0, 4, 8, 12
    source_id: str  # AuditSourceIdentification@AuditSourceID
    participants: list[ActiveParticipant]
    objects: list[ParticipantObject] = field(default_factory=list)
    event_types: list[Coded] = field(default_factory=list)
    outcome_description: str = ""
    purposes_of_use: list[Coded] = field(default_factory=list)
    enterprise_site_id: str = ""
    source_type: Coded = Coded("4", "DCM", "Application Server Process Tier in Multi-tier System")
    time: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    transaction: str = ""  # "ITI-18", ...: for the store's index, not in the XML

    def to_xml(self) -> etree._Element:
        root = etree.Element("AuditMessage")
        ev = etree.SubElement(root, "EventIdentification")
        ev.set("EventActionCode", self.action)
        ev.set("EventDateTime", self.time.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        ev.set("EventOutcomeIndicator", str(self.outcome))
        _coded(ev, "EventID", self.event_id)
        for c in self.event_types:
            _coded(ev, "EventTypeCode", c)
        if self.outcome_description:
            etree.SubElement(ev, "EventOutcomeDescription").text = _clean(self.outcome_description)
        for c in self.purposes_of_use:
            _coded(ev, "PurposeOfUse", c)
        for p in self.participants:
            ap = etree.SubElement(root, "ActiveParticipant")
            ap.set("UserID", _clean(p.user_id) or "unknown")
            if p.alternative_user_id:
                ap.set("AlternativeUserID", _clean(p.alternative_user_id))
            if p.user_name:
                ap.set("UserName", _clean(p.user_name))
            ap.set("UserIsRequestor", "true" if p.requestor else "false")
            if p.network_access_point:
                ap.set("NetworkAccessPointID", _clean(p.network_access_point))
                ap.set("NetworkAccessPointTypeCode", p.network_access_point_type)
            for c in p.roles:
                _coded(ap, "RoleIDCode", c)
        src = etree.SubElement(root, "AuditSourceIdentification")
        if self.enterprise_site_id:
            src.set("AuditEnterpriseSiteID", _clean(self.enterprise_site_id))
        src.set("AuditSourceID", _clean(self.source_id) or "unknown")
        _coded(src, "AuditSourceTypeCode", self.source_type)
        for o in self.objects:
            po = etree.SubElement(root, "ParticipantObjectIdentification")
            po.set("ParticipantObjectID", _clean(o.object_id) or "unknown")
            po.set("ParticipantObjectTypeCode", o.type_code)
            po.set("ParticipantObjectTypeCodeRole", o.role)
            _coded(po, "ParticipantObjectIDTypeCode", o.id_type)
            if o.query is not None:
                etree.SubElement(po, "ParticipantObjectQuery").text = base64.b64encode(o.query).decode()
            elif o.name:
                etree.SubElement(po, "ParticipantObjectName").text = _clean(o.name)
            for kind, value in o.details:
                d = etree.SubElement(po, "ParticipantObjectDetail")
                d.set("type", kind)
                d.set("value", base64.b64encode(value).decode())
            for sop_class, instances in o.sop_classes.items():
                sc = etree.SubElement(po, "SOPClass")
                sc.set("UID", _clean(sop_class))
                sc.set("NumberOfInstances", str(len(instances)))
                for uid in instances:
                    etree.SubElement(sc, "Instance").set("UID", _clean(uid))
            if o.contains_study:
                cs = etree.SubElement(po, "ParticipantObjectContainsStudy")
                for uid in o.contains_study:
                    etree.SubElement(cs, "StudyIDs").set("UID", _clean(uid))
        return root

    def to_bytes(self) -> bytes:
        """The message as UTF-8 XML: the bytes ``etree.tostring(self.to_xml(), xml_declaration=True,
        encoding="UTF-8")`` gives, written as text (a fifth of the time: one record per transaction)."""
        return self.to_text().encode("utf-8")

    def to_text(self) -> str:
        """:meth:`to_bytes` as a string (what the store keeps)."""
        out = ["<?xml version='1.0' encoding='UTF-8'?>\n<AuditMessage><EventIdentification EventActionCode=\"",
               _attr(self.action), '" EventDateTime="',
               self.time.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
               '" EventOutcomeIndicator="', str(self.outcome), '">']
        _coded_text(out, "EventID", self.event_id)
        for c in self.event_types:
            _coded_text(out, "EventTypeCode", c)
        if self.outcome_description:
            out += ["<EventOutcomeDescription>", _text(_clean(self.outcome_description)), "</EventOutcomeDescription>"]
        for c in self.purposes_of_use:
            _coded_text(out, "PurposeOfUse", c)
        out.append("</EventIdentification>")
        for p in self.participants:
            out += ['<ActiveParticipant UserID="', _attr(_clean(p.user_id) or "unknown"), '"']
            if p.alternative_user_id:
                out += [' AlternativeUserID="', _attr(_clean(p.alternative_user_id)), '"']
            if p.user_name:
                out += [' UserName="', _attr(_clean(p.user_name)), '"']
            out += [' UserIsRequestor="', "true" if p.requestor else "false", '"']
            if p.network_access_point:
                out += [' NetworkAccessPointID="', _attr(_clean(p.network_access_point)),
                        '" NetworkAccessPointTypeCode="', p.network_access_point_type, '"']
            if p.roles:
                out.append(">")
                for c in p.roles:
                    _coded_text(out, "RoleIDCode", c)
                out.append("</ActiveParticipant>")
            else:
                out.append("/>")
        out.append("<AuditSourceIdentification")
        if self.enterprise_site_id:
            out += [' AuditEnterpriseSiteID="', _attr(_clean(self.enterprise_site_id)), '"']
        out += [' AuditSourceID="', _attr(_clean(self.source_id) or "unknown"), '">']
        _coded_text(out, "AuditSourceTypeCode", self.source_type)
        out.append("</AuditSourceIdentification>")
        for o in self.objects:
            out += ['<ParticipantObjectIdentification ParticipantObjectID="', _attr(_clean(o.object_id) or "unknown"),
                    '" ParticipantObjectTypeCode="', _attr(o.type_code),
                    '" ParticipantObjectTypeCodeRole="', _attr(o.role), '">']
            _coded_text(out, "ParticipantObjectIDTypeCode", o.id_type)
            if o.query is not None:
                out += ["<ParticipantObjectQuery>", base64.b64encode(o.query).decode(), "</ParticipantObjectQuery>"]
            elif o.name:
                out += ["<ParticipantObjectName>", _text(_clean(o.name)), "</ParticipantObjectName>"]
            for kind, value in o.details:
                out += ['<ParticipantObjectDetail type="', _attr(kind), '" value="', base64.b64encode(value).decode(), '"/>']
            for sop_class, instances in o.sop_classes.items():
                out += ['<SOPClass UID="', _attr(_clean(sop_class)), '" NumberOfInstances="', str(len(instances)), '"']
                if instances:
                    out.append(">")
                    out += [f'<Instance UID="{_attr(_clean(uid))}"/>' for uid in instances]
                    out.append("</SOPClass>")
                else:
                    out.append("/>")
            if o.contains_study:
                out.append("<ParticipantObjectContainsStudy>")
                out += [f'<StudyIDs UID="{_attr(_clean(uid))}"/>' for uid in o.contains_study]
                out.append("</ParticipantObjectContainsStudy>")
            out.append("</ParticipantObjectIdentification>")
        out.append("</AuditMessage>")
        return "".join(out)


def _coded(parent: etree._Element, tag: str, value: Coded) -> etree._Element:
    el = etree.SubElement(parent, tag)
    el.set("csd-code", _clean(value.code))
    el.set("codeSystemName", _clean(value.system))
    el.set("originalText", _clean(value.text))
    return el


def _coded_text(out: list[str], tag: str, value: Coded) -> None:
    out += ["<", tag, ' csd-code="', _attr(_clean(value.code)), '" codeSystemName="', _attr(_clean(value.system)),
            '" originalText="', _attr(_clean(value.text)), '"/>']


_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                               "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_NEEDS_ESCAPE = re.compile('[&<>"\t\n\r]')


def _attr(text: str) -> str:
    """An attribute value as lxml writes it."""
    return text.translate(_ATTR_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


def _text(text: str) -> str:
    return text.translate(_TEXT_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    """Without the characters XML 1.0 cannot carry (a hostile value must not break the audit record)."""
    if text.isascii() and text.isprintable():  # the common case, without the regex
        return text
    return _NOT_XML.sub("", text)


@cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA)))


def validate(message: bytes | etree._Element) -> list[str]:
    """The schema errors of ``message`` (empty: valid per PS3.15 A.5.1)."""
    doc = etree.fromstring(message) if isinstance(message, bytes) else message
    schema = _schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
