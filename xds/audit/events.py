"""Audit messages of the node's transactions and events, per the IHE audit message definitions.

Each SOAP transaction follows one of three patterns of ITI TF-2 / RAD TF-3 "Audit Record
Considerations" (the node is always the responder):

- query (ITI-18 3.18.5.1.2, ITI-38 3.38.5.1.2): EventID Query (110112), action E; the requestor is
  the Source, the node the Destination; Patient (0..1) and Query Parameters (1) objects;
- import (ITI-41 3.41.5.1.2, ITI-42 3.42.5.1.2, RAD-68): EventID Import (110107), action C; Source
  the sender (requestor), Destination the node; Patient (1) and SubmissionSet (1), plus the studies
  of an imaging manifest;
- export (ITI-43 3.43.5.1.2, ITI-39 3.39.5.1.2, RAD-69 4.69.4.1.4, RAD-75): EventID Export
  (110106), action R; the node is the Source, the requestor the Destination; Patient (0..1) and
  each Document (Report Number, with repositoryUniqueId and homeCommunityId details) or Study.

Plus ITI-8 (3.8.5.1.2, Patient Record), application start/stop (PS3.15 A.5.3.1), user
authentication (A.5.3.15, XUA assertion accepted or refused) and security alerts (A.5.3.17, node
authentication failures). A human requestor from an XUA assertion (ITI-40 3.40.4.2) is one more
active participant, with its roles, and the purposes of use go in EventIdentification.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from xds.audit import codes as c
from xds.audit.codes import Coded
from xds.audit.context import AuditContext
from xds.audit.message import ActiveParticipant, AuditMessage, ParticipantObject

QUERY, IMPORT, EXPORT = "query", "import", "export"


@dataclass(frozen=True)
class Transaction:
    name: str  # "ITI-18"
    title: str
    pattern: str  # query | import | export

    @property
    def type_code(self) -> Coded:
        return c.ihe(self.name, self.title)


TRANSACTIONS = {
    t.name: t
    for t in (
        Transaction("ITI-18", "Registry Stored Query", QUERY),
        Transaction("ITI-38", "Cross Gateway Query", QUERY),
        Transaction("ITI-41", "Provide and Register Document Set-b", IMPORT),
        Transaction("ITI-42", "Register Document Set-b", IMPORT),
        Transaction("RAD-68", "Provide and Register Imaging Document Set - MTOM/XOP", IMPORT),
        Transaction("ITI-43", "Retrieve Document Set", EXPORT),
        Transaction("ITI-39", "Cross Gateway Retrieve", EXPORT),
        Transaction("RAD-69", "Retrieve Imaging Document Set", EXPORT),
        Transaction("RAD-75", "Cross Gateway Retrieve Imaging Document Set", EXPORT),
    )
}

# wsa:Action of the request -> transaction
ACTIONS = {
    "urn:ihe:iti:2007:RegistryStoredQuery": "ITI-18",
    "urn:ihe:iti:2007:CrossGatewayQuery": "ITI-38",
    "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b": "ITI-41",
    "urn:ihe:iti:2007:RegisterDocumentSet-b": "ITI-42",
    "urn:ihe:iti:2007:RetrieveDocumentSet": "ITI-43",
    "urn:ihe:iti:2007:CrossGatewayRetrieve": "ITI-39",
    "urn:ihe:rad:2009:RetrieveImagingDocumentSet": "RAD-69",
    "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet": "RAD-75",
}


@dataclass(frozen=True)
class Party:
    """One end of a transaction: UserID (an endpoint URI, wsa:ReplyTo, MSH-3|MSH-4, an AE title),
    the TLS client certificate's subject if any, and the network access point."""

    user_id: str
    address: str = ""
    certificate: str = ""
    alternative_user_id: str = ""


@dataclass(frozen=True)
class Person:
    """A human requestor asserted by XUA (ITI-40): the SAML subject, roles and purposes of use."""

    user_id: str
    user_name: str = ""
    roles: tuple[Coded, ...] = ()
    purposes_of_use: tuple[Coded, ...] = ()
    organization: str = ""  # XSPA organization-id, else organization name
    organization_id: str = ""


@dataclass
class Source:
    """The audit source: this node (AuditSourceIdentification)."""

    source_id: str
    enterprise_site_id: str = ""
    host: str = ""
    process_id: str = field(default_factory=lambda: str(os.getpid()))


def _node(party: Party, requestor: bool, role: Coded, source: Source) -> ActiveParticipant:
    return ActiveParticipant(
        party.user_id, requestor, [role], alternative_user_id=party.alternative_user_id or source.process_id,
        user_name=party.certificate, network_access_point=party.address or source.host, kind="node",
    )


def _remote(party: Party, requestor: bool, role: Coded) -> ActiveParticipant:
    return ActiveParticipant(party.user_id, requestor, [role], alternative_user_id=party.alternative_user_id,
                             user_name=party.certificate, network_access_point=party.address, kind="system")


def _human(person: Person) -> ActiveParticipant:
    return ActiveParticipant(person.user_id, True, list(person.roles), user_name=person.user_name, kind="person")


def _message(source: Source, event_id: Coded, action: str, outcome: int, participants: list[ActiveParticipant],
             objects: list[ParticipantObject], event_types: list[Coded], description: str,
             person: Person | None, transaction: str) -> AuditMessage:
    return AuditMessage(
        event_id=event_id, action=action, outcome=outcome, source_id=source.source_id,
        enterprise_site_id=source.enterprise_site_id, participants=participants, objects=objects,
        event_types=event_types, outcome_description=description,
        purposes_of_use=list(person.purposes_of_use) if person else [], transaction=transaction,
    )


def patient_object(patient_id: str, details: list[tuple[str, bytes]] | None = None) -> ParticipantObject:
    return ParticipantObject(patient_id, c.PERSON, c.ROLE_PATIENT, c.PATIENT_NUMBER, details=details or [])


def study_object(study_uid: str, instances: tuple[tuple[str, str], ...] = ()) -> ParticipantObject:
    by_class: dict[str, list[str]] = {}
    for sop_class, sop_instance in instances:
        by_class.setdefault(sop_class, []).append(sop_instance)
    return ParticipantObject(study_uid, c.SYSTEM_OBJECT, c.ROLE_REPORT, c.STUDY_INSTANCE_UID,
                             sop_classes=by_class, contains_study=[study_uid] if study_uid else [])


def _objects(tx: Transaction, ctx: AuditContext) -> list[ParticipantObject]:
    objects = [patient_object(p) for p in dict.fromkeys(ctx.patient_ids)]
    if tx.pattern == QUERY and ctx.query is not None:
        q = ctx.query
        details = [("QueryEncoding", q.encoding.encode())]
        if q.home_community_id:
            details.append(("urn:ihe:iti:xca:2010:homeCommunityId", q.home_community_id.encode()))
        objects.append(ParticipantObject(q.query_id or "unknown", c.SYSTEM_OBJECT, c.ROLE_QUERY, tx.type_code,
                                         query=q.request, details=details))
    if tx.pattern == IMPORT and ctx.submission_set_unique_id:
        objects.append(ParticipantObject(ctx.submission_set_unique_id, c.SYSTEM_OBJECT, c.ROLE_JOB, c.SUBMISSION_SET))
    if tx.pattern == EXPORT:
        for d in ctx.documents:
            details = [("Repository Unique Id", d.repository_unique_id.encode())]
            if d.home_community_id:
                details.append(("ihe:homeCommunityID", d.home_community_id.encode()))
            objects.append(ParticipantObject(d.unique_id, c.SYSTEM_OBJECT, c.ROLE_REPORT, c.REPORT_NUMBER,
                                             details=details))
    if tx.pattern in (IMPORT, EXPORT):
        objects += [study_object(s.study_instance_uid, s.instances) for s in ctx.studies]
    return objects


def transaction_message(
    tx: Transaction,
    *,
    outcome: int,
    node: Party,
    peer: Party,
    source: Source,
    context: AuditContext | None = None,
    person: Person | None = None,
    description: str = "",
) -> AuditMessage:
    """The audit message of a SOAP transaction the node answered (``node``: its endpoint URI and
    host; ``peer``: the requestor's wsa:ReplyTo, address and certificate)."""
    ctx = context or AuditContext()
    if tx.pattern == EXPORT:
        event_id, action = c.EXPORT, c.READ
        participants = [_node(node, False, c.SOURCE, source), _remote(peer, True, c.DESTINATION)]
    else:
        event_id, action = (c.QUERY, c.EXECUTE) if tx.pattern == QUERY else (c.IMPORT, c.CREATE)
        participants = [_remote(peer, True, c.SOURCE), _node(node, False, c.DESTINATION, source)]
    if person is not None:
        participants.append(_human(person))
    return _message(source, event_id, action, outcome, participants, _objects(tx, ctx), [tx.type_code],
                    description, person, tx.name)


def patient_identity_feed(
    *,
    outcome: int,
    action: str,
    patient_id: str,
    message_control_id: str,
    sender: Party,
    receiver: Party,
    source: Source,
    description: str = "",
) -> AuditMessage:
    """ITI-8 (ITI TF-2a 3.8.5.1.2), Document Registry side: ``sender`` is MSH-3|MSH-4, ``receiver``
    MSH-5|MSH-6; the patient carries MSH-10 as a detail. ``action``: C (A01/A04/A05), U (A08,
    merges), D (an id retired)."""
    participants = [_remote(sender, True, c.SOURCE), _node(receiver, False, c.DESTINATION, source)]
    objects = [patient_object(patient_id, [("MSH-10", message_control_id.encode())])] if patient_id else []
    return _message(source, c.PATIENT_RECORD, action, outcome, participants, objects,
                    [c.ihe("ITI-8", "Patient Identity Feed")], description, None, "ITI-8")


def instances_transferred(*, outcome: int, sender: Party, receiver: Party, source: Source, study: str,
                          instances: tuple[tuple[str, str], ...] = (), patient_id: str = "", action: str = c.CREATE,
                          description: str = "") -> AuditMessage:
    """DICOM Instances Transferred (PS3.15 A.5.3.7), on the receiving side of a C-STORE association:
    the sending AE (``sender``: AE title, address, certificate) is the Source, the node's listener
    the Destination; the study with the instances stored by SOP class, and its patient. ``study``
    is "" for data sets so malformed that their study is unknown (the object reads "unknown")."""
    participants = [_remote(sender, True, c.SOURCE), _node(receiver, False, c.DESTINATION, source)]
    objects = [study_object(study, instances)]
    if patient_id:
        objects.append(patient_object(patient_id))
    return _message(source, c.DICOM_INSTANCES_TRANSFERRED, action, outcome, participants, objects, [], description,
                    None, "C-STORE")


def patient_id_conflict(*, registered: str, header: str, study: str, node: Party, source: Source,
                        description: str) -> AuditMessage:
    """Patient Record (PS3.15 A.5.3, EventID 110110), read, minor failure: the Imaging Document
    Source published ``study`` under the patient the identity store names (``registered``), not the
    one its DICOM header named (``header``), per docs/identity.md."""
    participants = [_node(node, False, c.APPLICATION, source)]
    objects = [patient_object(registered, [("DICOM header patient id", header.encode())]), study_object(study)]
    return _message(source, c.PATIENT_RECORD, c.READ, c.MINOR_FAILURE, participants, objects,
                    [c.ihe("RAD-68", "Provide and Register Imaging Document Set-MTOM/XOP")], description, None,
                    "RAD-68")


def application_activity(*, started: bool, application: str, source: Source, launcher: str = "",
                         outcome: int = c.SUCCESS) -> AuditMessage:
    """Application Start / Stop (PS3.15 A.5.3.1): the node process, and who launched it."""
    participants = [ActiveParticipant(application, False, [c.APPLICATION], alternative_user_id=source.process_id,
                                      network_access_point=source.host)]
    if launcher:
        participants.append(ActiveParticipant(launcher, True, [c.APPLICATION_LAUNCHER]))
    return _message(source, c.APPLICATION_ACTIVITY, c.EXECUTE, outcome, participants, [],
                    [c.APPLICATION_START if started else c.APPLICATION_STOP], "", None, "")


def user_authentication(*, outcome: int, person: Person | None, node: Party, peer: Party, source: Source,
                        description: str = "") -> AuditMessage:
    """User Authentication / Login (PS3.15 A.5.3.15): an XUA assertion accepted (outcome 0) or
    refused (4). An unknown user is named by the peer system."""
    user = person or Person(user_id=peer.certificate or peer.user_id or peer.address or "unknown")
    participants = [_human(user), _remote(peer, False, c.SOURCE), _node(node, False, c.DESTINATION, source)]
    participants[0].network_access_point = peer.address
    return _message(source, c.USER_AUTHENTICATION, c.EXECUTE, outcome, participants, [], [c.LOGIN],
                    description, person, "ITI-40")


def security_alert(*, outcome: int, alert: Coded, reporter: Party, performer: Party, subject: str, source: Source,
                   description: str, person: Person | None = None) -> AuditMessage:
    """Security Alert (PS3.15 A.5.3.17), e.g. Node Authentication failure: the node reports, the
    peer that tried is the performer, the refused endpoint is the alert subject; ``person``: the
    user a replayed XUA assertion names."""
    participants = [
        _node(reporter, False, c.APPLICATION, source),
        ActiveParticipant(performer.certificate or performer.address or performer.user_id or "unknown", True, [],
                          alternative_user_id=performer.alternative_user_id, user_name=performer.certificate,
                          network_access_point=performer.address, kind="system"),
    ]
    if person is not None:
        participants.append(_human(person))
    objects = [ParticipantObject(subject, c.SYSTEM_OBJECT, c.ROLE_SECURITY_RESOURCE, c.URI,
                                 details=[("Alert Description", description.encode())])]
    return _message(source, c.SECURITY_ALERT, c.EXECUTE, outcome, participants, objects, [alert], description,
                    None, "")


def initiated_message(tx: Transaction, *, outcome: int, node: Party, peer: Party, source: Source,
                      context: AuditContext | None = None, person: Person | None = None,
                      description: str = "") -> AuditMessage:
    """The audit message of a transaction the node sent on a consumer's behalf (the DI Common
    Service's Initiating Gateway; ``node``: its wsa:ReplyTo and host, ``peer``: the Responding
    Gateway's endpoint URI and host). The mirror of :func:`transaction_message`:

    - ITI-38 (ITI TF-2b 3.38.5.1.1): Query (110112), action E; the node is the Source and the
      requestor, the Responding Gateway the Destination; Patient (0..1) and Query Parameters (1);
    - ITI-39 (3.39.5.1.1) and RAD-75 (RAD TF-3 4.75, as ITI-39): Import (110107), action C; the
      Responding Gateway is the Source, the node the Destination and the requestor; Patient (0..1)
      and each Document (with its repositoryUniqueId and homeCommunityId) or Study."""
    ctx = context or AuditContext()
    if tx.pattern == QUERY:
        event_id, action = c.QUERY, c.EXECUTE
        participants = [_node(node, True, c.SOURCE, source), _remote(peer, False, c.DESTINATION)]
    else:
        event_id, action = c.IMPORT, c.CREATE
        participants = [_remote(peer, False, c.SOURCE), _node(node, True, c.DESTINATION, source)]
    if person is not None:
        participants.append(_human(person))
    return _message(source, event_id, action, outcome, participants, _objects(tx, ctx), [tx.type_code],
                    description, person, tx.name)
