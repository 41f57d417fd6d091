"""XDS metadata as typed objects (ITI TF-3 4.1 and 4.2.3): DocumentEntry, SubmissionSet, Folder,
Association, and the HL7 v2 datatype values they carry as strings.

Values keep their wire (HL7 v2 encoded) form, e.g. a patient id ``"123^^^&1.2.3&ISO"``; the parsers
in :mod:`xds.metadata.datatypes` split them when a rule needs the parts. This is the one shape that
flows between the ebRIM codec (:mod:`xds.metadata.ebrim`), the validation catalogue
(:mod:`xds.metadata.rules`) and the registry store. Nothing here touches XML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xds.metadata.errors import RegistryError

# --- ebRIM object types, classification schemes and identification schemes (ITI TF-3 4.2.5) ---

STABLE_DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ON_DEMAND_DOCUMENT_ENTRY = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
DOCUMENT_ENTRY_TYPES = (STABLE_DOCUMENT_ENTRY, ON_DEMAND_DOCUMENT_ENTRY)

SUBMISSION_SET_CLASSIFICATION = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_CLASSIFICATION = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"

# DocumentEntry classification schemes
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_HEALTHCARE_FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_LIMITED_METADATA = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# SubmissionSet
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_LIMITED_METADATA = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"

# Folder
FOL_CODE_LIST = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
FOL_LIMITED_METADATA = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"
FOL_PATIENT_ID = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOL_UNIQUE_ID = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"

# Association documentation (ITI TF-3 4.2.2.2: SubmissionSet->DocumentEntry HasMember carries
# the SubmissionSetStatus slot: Original or Reference)
ASSOCIATION_DOCUMENTATION = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"

STATUS_APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
STATUS_DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
STATUS_SUBMITTED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"

AVAILABILITY_STABLE = "urn:ihe:iti:2010:DocumentAvailability:Online"
AVAILABILITY_OFFLINE = "urn:ihe:iti:2010:DocumentAvailability:Offline"

# Association types (ebRIM 3.0 and ITI TF-3 4.2.2)
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
APND = "urn:ihe:iti:2007:AssociationType:APND"
XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
IS_SNAPSHOT_OF = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
SUBMIT_ASSOCIATION = "urn:ihe:iti:2010:AssociationType:SubmitAssociation"
RELATIONSHIP_TYPES = (RPLC, APND, XFRM, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF)
REPLACEMENT_TYPES = (RPLC, XFRM_RPLC)

# referenceIdList ID types (ITI TF-3 4.2.3.2.28, and RAD TF-3 4.68.4.1.2.3.3)
REF_UNIQUE_ID = "urn:ihe:iti:xds:2013:uniqueId"
REF_ACCESSION = "urn:ihe:iti:xds:2013:accession"
REF_REFERRAL = "urn:ihe:iti:xds:2013:referral"
REF_ORDER = "urn:ihe:iti:xds:2013:order"
REF_WORKFLOW_INSTANCE = "urn:ihe:iti:xdw:2013:workflowInstanceId"
REF_ENCOUNTER = "urn:ihe:iti:xds:2015:encounterId"
REF_STUDY_INSTANCE_UID = "urn:ihe:iti:xds:2016:studyInstanceUID"


@dataclass(frozen=True)
class Code:
    """A coded value: a Classification with a nodeRepresentation, codingScheme slot and Name."""

    code: str
    scheme: str
    display_name: str = ""


@dataclass
class Author:
    """The author classification (ITI TF-3 4.2.3.1.4): slots authorPerson (XCN),
    authorInstitution (XON, repeating), authorRole, authorSpecialty, authorTelecommunication (XTN)."""

    person: str | None = None
    institutions: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    specialties: list[str] = field(default_factory=list)
    telecommunications: list[str] = field(default_factory=list)


@dataclass
class RegistryObject:
    """What every XDS object shares. ``entry_uuid`` is the ebRIM ``id``: a ``urn:uuid:`` or, in a
    submission, a symbolic id the registry replaces. ``extra_slots`` keeps slots whose names are not
    XDS attributes (extra metadata, ITI TF-3 4.2.3.1.1: names beginning ``urn:`` other than
    ``urn:ihe:``); ``other_slots`` every other unrecognised slot, kept for the validator to judge.
    """

    entry_uuid: str = ""
    home_community_id: str | None = None
    status: str | None = None
    extra_slots: dict[str, list[str]] = field(default_factory=dict)
    other_slots: dict[str, list[str]] = field(default_factory=dict)
    lid: str | None = None
    version_name: str | None = None


@dataclass
class DocumentEntry(RegistryObject):
    object_type: str = STABLE_DOCUMENT_ENTRY
    unique_id: str = ""
    patient_id: str = ""
    mime_type: str = ""
    title: str | None = None
    comments: str | None = None
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    creation_time: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    hash: str | None = None
    size: int | None = None
    repository_unique_id: str | None = None
    uri: str | None = None
    reference_ids: list[str] = field(default_factory=list)
    document_availability: str | None = None
    limited_metadata: bool = False

    @property
    def on_demand(self) -> bool:
        return self.object_type == ON_DEMAND_DOCUMENT_ENTRY


@dataclass
class SubmissionSet(RegistryObject):
    unique_id: str = ""
    source_id: str = ""
    patient_id: str = ""
    submission_time: str | None = None
    title: str | None = None
    comments: str | None = None
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    intended_recipients: list[str] = field(default_factory=list)
    limited_metadata: bool = False


@dataclass
class Folder(RegistryObject):
    unique_id: str = ""
    patient_id: str = ""
    title: str | None = None
    comments: str | None = None
    codes: list[Code] = field(default_factory=list)
    last_update_time: str | None = None
    limited_metadata: bool = False


@dataclass
class Association(RegistryObject):
    association_type: str = ""
    source: str = ""
    target: str = ""
    # HasMember from a SubmissionSet to a DocumentEntry: "Original" or "Reference"
    submission_set_status: str | None = None
    # Optional association documentation classification (ITI TF-3 4.2.2.1.x)
    documentation: Code | None = None
    # Slots such as PreviousVersion / OriginalStatus / NewStatus (update options)
    slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Submission:
    """One SubmitObjectsRequest: exactly one SubmissionSet and what it brings (ITI TF-3 4.1.4)."""

    submission_set: SubmissionSet | None = None
    document_entries: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    # ObjectRefs named in the request (ids of objects already in the registry)
    object_refs: list[str] = field(default_factory=list)
    # Problems the ebRIM parser met (ill-formed slots, orphan classifications, ...); the
    # validator reports them with its own findings.
    parse_errors: list[RegistryError] = field(default_factory=list)

    def objects(self) -> list[RegistryObject]:
        out: list[RegistryObject] = []
        if self.submission_set is not None:
            out.append(self.submission_set)
        out.extend(self.document_entries)
        out.extend(self.folders)
        out.extend(self.associations)
        return out
