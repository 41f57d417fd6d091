"""The one catalogue of XDS metadata rules, and the stateless validation of a submission.

Every problem the registry, repository or their parsers report is a :class:`Rule`: an id, a message
template and the IHE error code it raises (ITI TF-3 4.2.4.1, Table 4.2.4.1-2). The code is part of
the contract with Document Sources and conformance tools, so it is fixed here and nowhere else;
callers say *which* rule failed, never which code::

    raise Rule.UNKNOWN_PATIENT_ID.exception(location=entry.entry_uuid, patient_id=pid)

:func:`validate_submission` applies the rules that need nothing but the request itself
(ITI TF-3 4.1 and 4.2.3; attribute optionality of Table 4.3.1-3 by :class:`Profile`). Rules that
need registry state (known patients, existing uniqueIds, deprecated targets) are catalogued here
and applied by the registry.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum, unique
from typing import TYPE_CHECKING, Any

from xds.metadata import datatypes as dt
from xds.metadata import model as m
from xds.metadata.errors import ERROR, WARNING, RegistryError, XdsError

if TYPE_CHECKING:
    from xds.metadata.codes import CodeList


@unique
class ErrorCode(StrEnum):
    """errorCode values of ITI TF-3 Table 4.2.4.1-2 that a registry, repository or gateway raises
    (plus the ebRS / RMU / RMD exceptions the same actors use)."""

    XDS_REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
    XDS_REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
    XDS_PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    XDS_UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    XDS_REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
    XDS_REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRepositoryDuplicateUniqueIdInMessage"
    XDS_DUPLICATE_UNIQUE_ID_IN_REGISTRY = "XDSDuplicateUniqueIdInRegistry"
    XDS_NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    XDS_NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    XDS_REGISTRY_DEPRECATED_DOCUMENT_ERROR = "XDSRegistryDeprecatedDocumentError"
    XDS_REGISTRY_ERROR = "XDSRegistryError"
    XDS_REPOSITORY_ERROR = "XDSRepositoryError"
    XDS_REGISTRY_BUSY = "XDSRegistryBusy"
    XDS_REPOSITORY_BUSY = "XDSRepositoryBusy"
    XDS_REGISTRY_OUT_OF_RESOURCES = "XDSRegistryOutOfResources"
    XDS_REPOSITORY_OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
    XDS_REGISTRY_NOT_AVAILABLE = "XDSRegistryNotAvailable"
    XDS_EXTRA_METADATA_NOT_SAVED = "XDSExtraMetadataNotSaved"
    XDS_MISSING_DOCUMENT = "XDSMissingDocument"
    XDS_MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    XDS_DOCUMENT_UNIQUE_ID_ERROR = "XDSDocumentUniqueIdError"
    XDS_UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
    XDS_STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    XDS_STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    XDS_UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    XDS_RESULT_NOT_SINGLE_PATIENT = "XDSResultNotSinglePatient"
    XDS_TOO_MANY_RESULTS = "XDSTooManyResults"
    XDS_UNKNOWN_COMMUNITY = "XDSUnknownCommunity"
    XDS_MISSING_HOME_COMMUNITY_ID = "XDSMissingHomeCommunityId"
    XDS_UNAVAILABLE_COMMUNITY = "XDSUnavailableCommunity"
    XDS_INVALID_REQUEST_EXCEPTION = "XDSInvalidRequestException"
    XDS_REPLACE_FAILED = "XDSReplaceFailed"
    UNRESOLVED_REFERENCE_EXCEPTION = "UnresolvedReferenceException"
    REFERENCES_EXIST_EXCEPTION = "ReferencesExistException"
    XDS_UNREFERENCED_OBJECT_EXCEPTION = "XDSUnreferencedObjectException"
    INVALID_DOCUMENT_CONTENT = "InvalidDocumentContent"
    DOCUMENT_QUEUED = "DocumentQueued"
    PARTIAL_FOLDER_CONTENT_NOT_PROCESSED = "PartialFolderContentNotProcessed"
    PARTIAL_APPEND_CONTENT_NOT_PROCESSED = "PartialAppendContentNotProcessed"
    PARTIAL_REPLACE_CONTENT_NOT_PROCESSED = "PartialReplaceContentNotProcessed"
    # The TF spells these two without "Content" (Table 4.2.4.1-2; also NIST's ProfileDefinedErrorCodes)
    PARTIAL_TRANSFORM_NOT_PROCESSED = "PartialTransformNotProcessed"
    PARTIAL_TRANSFORM_REPLACE_NOT_PROCESSED = "PartialTransformReplaceNotProcessed"
    XDS_METADATA_UPDATE_ERROR = "XDSMetadataUpdateError"
    XDS_METADATA_UPDATE_OPERATION_ERROR = "XDSMetadataUpdateOperationError"
    XDS_METADATA_VERSION_ERROR = "XDSMetadataVersionError"
    XDS_PATIENT_ID_RECONCILIATION_ERROR = "XDSPatientIDReconciliationError"


C = ErrorCode

# errorCodes that say the responder (or a system it depends on) could not serve the request, not that
# the request was wrong (ITI TF-3 Table 4.2.4.1-2). A Failure made of these only is a failure of the
# service: its audit message says major failure (12), not serious failure (8).
UNAVAILABLE = frozenset({
    C.XDS_REGISTRY_BUSY, C.XDS_REPOSITORY_BUSY, C.XDS_REGISTRY_OUT_OF_RESOURCES,
    C.XDS_REPOSITORY_OUT_OF_RESOURCES, C.XDS_REGISTRY_NOT_AVAILABLE, C.XDS_UNAVAILABLE_COMMUNITY,
})


@unique
class Rule(Enum):
    """One entry per rule: (message template, error code[, severity]).

    Templates use ``str.format`` fields; :meth:`error` fills them from keyword arguments. A
    missing field leaves its ``{name}`` in the text instead of failing: reporting an error must
    not raise another one."""

    # fmt: off
    # --- request structure (ITI TF-3 4.1.4, 4.2.1) ---
    NOT_A_SUBMISSION = ("Expected lcm:SubmitObjectsRequest or rim:RegistryObjectList, got {element}", C.XDS_REGISTRY_METADATA_ERROR)
    NOT_EBRIM_3 = ("Element {element} is not ebRIM 3.0 (namespace urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0)", C.XDS_REGISTRY_METADATA_ERROR)
    UNEXPECTED_ELEMENT = ("Element {element} is not an XDS metadata object", C.XDS_REGISTRY_METADATA_ERROR)
    MISSING_ID = ("A {element} has no id attribute", C.XDS_REGISTRY_METADATA_ERROR)
    DUPLICATE_ID = ("The id {id} is used by more than one object in the submission", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_UUID = ("{what} {value!r} starts with urn:uuid: but is not a UUID", C.XDS_REGISTRY_METADATA_ERROR)
    SUBMISSION_SET_MISSING = ("The submission has no SubmissionSet (ITI TF-3 4.1.4)", C.XDS_REGISTRY_METADATA_ERROR)
    SUBMISSION_SET_NOT_UNIQUE = ("The submission has {count} SubmissionSets; exactly one is allowed (ITI TF-3 4.1.4)", C.XDS_REGISTRY_METADATA_ERROR)
    PACKAGE_UNCLASSIFIED = ("RegistryPackage {id} is classified neither as SubmissionSet nor as Folder", C.XDS_REGISTRY_METADATA_ERROR)
    PACKAGE_DOUBLY_CLASSIFIED = ("RegistryPackage {id} is classified both as SubmissionSet and as Folder", C.XDS_REGISTRY_METADATA_ERROR)
    WRONG_OBJECT_TYPE = ("ExtrinsicObject {id} has objectType {value!r}, which is not a DocumentEntry type", C.XDS_REGISTRY_METADATA_ERROR)
    ON_DEMAND_NOT_ALLOWED = ("DocumentEntry {id} is On-Demand; {profile} registers Stable DocumentEntries only", C.XDS_REGISTRY_METADATA_ERROR)
    CLASSIFIED_OBJECT_UNKNOWN = ("Classification {id} classifies {target}, which is not in the submission", C.XDS_REGISTRY_METADATA_ERROR)
    CLASSIFIED_OBJECT_MISMATCH = ("Classification {id} inside {parent} names classifiedObject {target}; taken as classifying {parent}", C.XDS_REGISTRY_METADATA_ERROR, WARNING)
    IDENTIFIED_OBJECT_MISMATCH = ("ExternalIdentifier {id} inside {parent} names registryObject {target}; taken as identifying {parent}", C.XDS_REGISTRY_METADATA_ERROR, WARNING)
    IDENTIFIED_OBJECT_UNKNOWN = ("ExternalIdentifier {id} belongs to {target}, which is not in the submission", C.XDS_REGISTRY_METADATA_ERROR)
    UNKNOWN_CLASSIFICATION = ("{object} {id}: classification {scheme} is not XDS metadata and is not kept", C.XDS_EXTRA_METADATA_NOT_SAVED, WARNING)
    UNKNOWN_EXTERNAL_IDENTIFIER = ("{object} {id}: external identifier {scheme} is not XDS metadata and is not kept", C.XDS_EXTRA_METADATA_NOT_SAVED, WARNING)
    LID_NOT_UUID = ("{object} {id} has lid {value!r}, which is not a UUID (ITI TF-3 4.2.3.2.15)", C.XDS_REGISTRY_METADATA_ERROR)
    LID_DIFFERS = ("{object} {id} has lid {value!r}; a lid different from the id is only allowed in Update Document Set", C.XDS_REGISTRY_METADATA_ERROR)
    # --- slots and attributes (ITI TF-3 4.2.3, Table 4.3.1-3) ---
    DUPLICATE_SLOT = ("{object} {id} has slot {name} more than once", C.XDS_REGISTRY_METADATA_ERROR)
    SLOT_NOT_SINGLE = ("{object} {id}: slot {name} must have exactly one value, has {count}", C.XDS_REGISTRY_METADATA_ERROR)
    SLOT_VALUE_TOO_LONG = ("{object} {id}: a value of slot {name} exceeds 256 characters (ebRIM LongName)", C.XDS_REGISTRY_METADATA_ERROR)
    ATTRIBUTE_MISSING = ("{object} {id} lacks required attribute {attribute} (ITI TF-3 Table 4.3.1-3, {profile})", C.XDS_REGISTRY_METADATA_ERROR)
    ATTRIBUTE_NOT_SINGLE = ("{object} {id} has {count} {attribute} values; at most one is allowed", C.XDS_REGISTRY_METADATA_ERROR)
    LIMITED_METADATA_PROHIBITED = ("{object} {id} is flagged limitedMetadata, which XDS prohibits (ITI TF-3 Table 4.3.1-3)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_DTM = ("{object} {id}: {attribute} {value!r} is not a DTM YYYY[MM[DD[hh[mm[ss]]]]] (ITI TF-3 4.2.3.1.7)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_OID = ("{object} {id}: {attribute} {value!r} is not an OID of at most 64 characters", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_UNIQUE_ID = ("{object} {id}: uniqueId {value!r} is neither an OID nor root^extension (ITI TF-3 4.2.3.2.26)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_HOME_COMMUNITY_ID = ("{object} {id}: homeCommunityId {value!r} is not urn:oid:<OID>", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_CX = ("{object} {id}: {attribute} {value!r} {problem} (ITI TF-3 Table 4.2.3.1.7-2, CX)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_REFERENCE_ID = ("{object} {id}: referenceIdList value {value!r} {problem} (CXi)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_XCN = ("{object} {id}: {attribute} {value!r} {problem} (XCN)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_XON = ("{object} {id}: {attribute} {value!r} {problem} (XON)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_XTN = ("{object} {id}: {attribute} {value!r} {problem} (XTN)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_INTENDED_RECIPIENT = ("{object} {id}: intendedRecipient {value!r} {problem}", C.XDS_REGISTRY_METADATA_ERROR)
    AUTHOR_INCOMPLETE = ("{object} {id}: an author has none of authorPerson, authorInstitution, authorTelecommunication (ITI TF-3 4.2.3.1.4)", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_SOURCE_PATIENT_INFO = ("{object} {id}: sourcePatientInfo value {value!r} {problem}", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_HASH = ("{object} {id}: hash {value!r} is not a SHA-1 in 40 hexadecimal digits", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_SIZE = ("{object} {id}: size {value!r} is not a non-negative integer", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_LANGUAGE_CODE = ("{object} {id}: languageCode {value!r} is not an RFC 3066 language tag", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_MIME_TYPE = ("{object} {id}: mimeType {value!r} is not a MIME type", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_URI = ("{object} {id}: URI {value!r} is not a URI", C.XDS_REGISTRY_METADATA_ERROR)
    INVALID_DOCUMENT_AVAILABILITY = ("{object} {id}: documentAvailability {value!r} is neither Online nor Offline", C.XDS_REGISTRY_METADATA_ERROR)
    # --- codes (ITI TF-3 4.2.3.1.2; affinity domain vocabulary) ---
    CODE_INCOMPLETE = ("{object} {id}: {attribute} has no {part}", C.XDS_REGISTRY_METADATA_ERROR)
    CODE_NOT_IN_CODE_LIST = ("{object} {id}: {attribute} code {code!r} of coding scheme {scheme!r} is not in the affinity domain's code list", C.XDS_REGISTRY_METADATA_ERROR)
    MIME_TYPE_NOT_IN_CODE_LIST = ("{object} {id}: mimeType {value!r} is not accepted by the affinity domain", C.XDS_REGISTRY_METADATA_ERROR)
    # --- consistency within the submission ---
    DOC_ENTRY_PATIENT_ID_MISMATCH = ("DocumentEntry {id} has patientId {value!r}, the SubmissionSet {expected!r} (ITI TF-3 4.1.4)", C.XDS_PATIENT_ID_DOES_NOT_MATCH)
    FOLDER_PATIENT_ID_MISMATCH = ("Folder {id} has patientId {value!r}, the SubmissionSet {expected!r} (ITI TF-3 4.1.4)", C.XDS_PATIENT_ID_DOES_NOT_MATCH)
    PATIENT_ID_NOT_IN_AFFINITY_DOMAIN = ("{object} {id}: patientId {value!r} is not issued by the affinity domain's assigning authority {authority}", C.XDS_UNKNOWN_PATIENT_ID)
    DUPLICATE_UNIQUE_ID_IN_MESSAGE = ("uniqueId {value!r} is used by more than one object in the submission", C.XDS_REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE)
    # --- associations (ITI TF-3 4.2.2) ---
    UNKNOWN_ASSOCIATION_TYPE = ("Association {id} has associationType {value!r}, which {profile} does not accept", C.XDS_REGISTRY_METADATA_ERROR)
    UNRESOLVED_SYMBOLIC_REFERENCE = ("Association {id}: {end} {target!r} is neither an object in the submission nor a UUID", C.UNRESOLVED_REFERENCE_EXCEPTION)
    SUBMISSION_SET_STATUS_MISSING = ("Association {id}: a SubmissionSet-to-DocumentEntry HasMember needs slot SubmissionSetStatus (ITI TF-3 4.2.2.1.1)", C.XDS_REGISTRY_METADATA_ERROR)
    SUBMISSION_SET_STATUS_INVALID = ("Association {id}: SubmissionSetStatus {value!r} is not valid here ({why})", C.XDS_REGISTRY_METADATA_ERROR)
    HAS_MEMBER_SOURCE_INVALID = ("Association {id}: HasMember source {source} is a {kind}; only a SubmissionSet or Folder has members", C.XDS_REGISTRY_METADATA_ERROR)
    SUBMISSION_SET_SOURCE_FOREIGN = ("Association {id}: source {source} is a SubmissionSet not in this submission", C.XDS_REGISTRY_METADATA_ERROR)
    NOT_MEMBER_OF_SUBMISSION_SET = ("{object} {id} is not a member (HasMember) of the SubmissionSet (ITI TF-3 4.1.4)", C.XDS_REGISTRY_METADATA_ERROR)
    RELATIONSHIP_SOURCE_INVALID = ("Association {id} ({type}): source {source} must be a DocumentEntry of this submission (ITI TF-3 4.2.2.2)", C.XDS_REGISTRY_METADATA_ERROR)
    RELATIONSHIP_TARGET_INVALID = ("Association {id} ({type}): target {target} must be a DocumentEntry already in the registry (ITI TF-3 4.2.2.2)", C.XDS_REGISTRY_METADATA_ERROR)
    # --- registry state (applied by the registry, ITI TF-2 3.42.4.1.3) ---
    UNKNOWN_PATIENT_ID = ("patientId {patient_id!r} is not known to the registry (no Patient Identity Feed)", C.XDS_UNKNOWN_PATIENT_ID)
    LOCAL_PATIENT_ID_UNMAPPED = ("patientId {patient_id!r} is a local id {why}", C.XDS_UNKNOWN_PATIENT_ID)
    SUBMISSION_HELD = ("patientId {patient_id!r} is a local id with no health number yet: the submission is held and will be registered when the identity feed links one", C.DOCUMENT_QUEUED, WARNING)
    DUPLICATE_UNIQUE_ID_IN_REGISTRY = ("uniqueId {value!r} is already registered for another object", C.XDS_DUPLICATE_UNIQUE_ID_IN_REGISTRY)
    NON_IDENTICAL_HASH = ("uniqueId {value!r} is registered with another hash", C.XDS_NON_IDENTICAL_HASH)
    NON_IDENTICAL_SIZE = ("uniqueId {value!r} is registered with another size", C.XDS_NON_IDENTICAL_SIZE)
    UNRESOLVED_REFERENCE = ("{id} ({what}) is not in the registry", C.UNRESOLVED_REFERENCE_EXCEPTION)
    REFERENCED_OBJECT_WRONG_TYPE = ("Association {id}: {end} {target} is a {kind} in the registry; expected {expected}", C.XDS_REGISTRY_METADATA_ERROR)
    REFERENCED_PATIENT_ID_MISMATCH = ("Association {id}: {target} belongs to another patient ({value!r})", C.XDS_PATIENT_ID_DOES_NOT_MATCH)
    DEPRECATED_TARGET = ("Association {id}: target {target} is Deprecated and cannot be replaced, appended or transformed", C.XDS_REGISTRY_DEPRECATED_DOCUMENT_ERROR)
    REPLACE_FAILED = ("Replacement of {target} failed: {reason}", C.XDS_REPLACE_FAILED)
    EXTRA_METADATA_NOT_SAVED = ("{object} {id}: extra metadata slot {name} was not saved", C.XDS_EXTRA_METADATA_NOT_SAVED, WARNING)
    PATIENT_ID_RECONCILIATION = ("patientId {patient_id!r} could not be reconciled: {reason}", C.XDS_PATIENT_ID_RECONCILIATION_ERROR)
    METADATA_UPDATE = ("Metadata update of {id} not allowed: {reason}", C.XDS_METADATA_UPDATE_ERROR)
    METADATA_UPDATE_OPERATION = ("Metadata update operation on {id} not supported: {reason}", C.XDS_METADATA_UPDATE_OPERATION_ERROR)
    METADATA_VERSION = ("{id}: version {value!r} is not the latest", C.XDS_METADATA_VERSION_ERROR)
    REFERENCES_EXIST = ("{id} is still referenced by {other}", C.REFERENCES_EXIST_EXCEPTION)
    UNREFERENCED_OBJECT = ("{id} would be left without any association", C.XDS_UNREFERENCED_OBJECT_EXCEPTION)
    # --- repository (ITI TF-2 3.41.4.1.3, 3.43) ---
    MISSING_DOCUMENT = ("DocumentEntry {id} has no document in the request", C.XDS_MISSING_DOCUMENT)
    MISSING_DOCUMENT_METADATA = ("Document {id} has no DocumentEntry in the metadata", C.XDS_MISSING_DOCUMENT_METADATA)
    HASH_MISMATCH = ("DocumentEntry {id}: hash {value!r} differs from the document's SHA-1 {actual}", C.XDS_REPOSITORY_METADATA_ERROR)
    SIZE_MISMATCH = ("DocumentEntry {id}: size {value!r} differs from the document's size {actual}", C.XDS_REPOSITORY_METADATA_ERROR)
    REPOSITORY_UNIQUE_ID_MISMATCH = ("DocumentEntry {id}: repositoryUniqueId {value!r} is not this repository's {actual}", C.XDS_REPOSITORY_METADATA_ERROR)
    DUPLICATE_UNIQUE_ID_IN_REPOSITORY_MESSAGE = ("Document uniqueId {value!r} appears more than once in the request", C.XDS_REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE)
    UNKNOWN_REPOSITORY_ID = ("repositoryUniqueId {value!r} is not known", C.XDS_UNKNOWN_REPOSITORY_ID)
    DOCUMENT_NOT_AVAILABLE = ("Document {value!r} is not available", C.XDS_DOCUMENT_UNIQUE_ID_ERROR)
    INVALID_DOCUMENT_CONTENT = ("Document {id} does not match its metadata: {reason}", C.INVALID_DOCUMENT_CONTENT)
    DOCUMENT_QUEUED = ("Document {id} was queued for later matching", C.DOCUMENT_QUEUED, WARNING)
    REPOSITORY_ERROR = ("Repository error: {reason}", C.XDS_REPOSITORY_ERROR)
    REPOSITORY_BUSY = ("The repository is busy: {reason}", C.XDS_REPOSITORY_BUSY)
    REPOSITORY_OUT_OF_RESOURCES = ("The repository is out of resources: {reason}", C.XDS_REPOSITORY_OUT_OF_RESOURCES)
    REGISTRY_NOT_AVAILABLE = ("The registry could not be reached: {reason}", C.XDS_REGISTRY_NOT_AVAILABLE)
    # --- RAD-68: the manifest against its DocumentEntry (RAD TF-3 4.68.4.1.3, 4.68.4.1.2.3) ---
    KOS_NOT_DICOM = ("DocumentEntry {id}: mimeType is application/dicom but the document is not DICOM ({reason})", C.XDS_REPOSITORY_METADATA_ERROR)
    KOS_WRONG_SOP_CLASS = ("DocumentEntry {id}: the document is SOP class {value}, not a Key Object Selection Document (formatCode)", C.XDS_REPOSITORY_METADATA_ERROR)
    KOS_METADATA_MISMATCH = ("DocumentEntry {id}: {field} {value!r} does not match the manifest's {what} {actual!r}", C.XDS_REPOSITORY_METADATA_ERROR)
    # RAD TF-3 4.68.4.1.2.3 binds the Imaging Document Source; the repository stores the manifest as submitted
    KOS_UNIQUE_ID_MISMATCH = ("DocumentEntry {id}: uniqueId {value!r} is not the manifest's SOP Instance UID {actual!r} (RAD TF-3 4.68.4.1.2.3); registered as submitted", C.XDS_REPOSITORY_METADATA_ERROR, WARNING)
    KOS_REFERENCE_NOT_IN_MANIFEST = ("DocumentEntry {id}: referenceIdList {value!r} names a {what} the manifest does not reference", C.XDS_REPOSITORY_METADATA_ERROR)
    # --- stored query (ITI TF-2 3.18.4.1.3) ---
    UNKNOWN_STORED_QUERY = ("Stored query {value!r} is not known", C.XDS_UNKNOWN_STORED_QUERY)
    STORED_QUERY_MISSING_PARAM = ("Stored query {query}: required parameter {param} is missing", C.XDS_STORED_QUERY_MISSING_PARAM)
    STORED_QUERY_PARAM_NUMBER = ("Stored query {query}: parameter {param} {why}", C.XDS_STORED_QUERY_PARAM_NUMBER)
    STORED_QUERY_PARAM_INVALID = ("Stored query {query}: parameter {param} value {value!r} is invalid: {why}", C.XDS_REGISTRY_ERROR)
    RESULT_NOT_SINGLE_PATIENT = ("The query result spans more than one patient", C.XDS_RESULT_NOT_SINGLE_PATIENT)
    TOO_MANY_RESULTS = ("The query matches {count} objects; the limit is {limit}", C.XDS_TOO_MANY_RESULTS)
    # --- cross-community (ITI TF-2 3.38, 3.39) ---
    UNKNOWN_COMMUNITY = ("homeCommunityId {value!r} is not known", C.XDS_UNKNOWN_COMMUNITY)
    MISSING_HOME_COMMUNITY_ID = ("{what} needs a homeCommunityId", C.XDS_MISSING_HOME_COMMUNITY_ID)
    UNAVAILABLE_COMMUNITY = ("Community {value!r} did not answer: {reason}", C.XDS_UNAVAILABLE_COMMUNITY)
    # --- general ---
    INVALID_REQUEST = ("The request is invalid: {reason}", C.XDS_INVALID_REQUEST_EXCEPTION)
    REGISTRY_ERROR = ("Registry error: {reason}", C.XDS_REGISTRY_ERROR)
    REGISTRY_BUSY = ("The registry is busy: {reason}", C.XDS_REGISTRY_BUSY)
    REGISTRY_OUT_OF_RESOURCES = ("The registry is out of resources: {reason}", C.XDS_REGISTRY_OUT_OF_RESOURCES)
    # --- content a Document Recipient did not process (ITI TF-2 3.41.4.1.3; XDR) ---
    PARTIAL_FOLDER_CONTENT_NOT_PROCESSED = ("Folder content was not processed: {reason}", C.PARTIAL_FOLDER_CONTENT_NOT_PROCESSED, WARNING)
    PARTIAL_APPEND_CONTENT_NOT_PROCESSED = ("Append content was not processed: {reason}", C.PARTIAL_APPEND_CONTENT_NOT_PROCESSED, WARNING)
    PARTIAL_REPLACE_CONTENT_NOT_PROCESSED = ("Replace content was not processed: {reason}", C.PARTIAL_REPLACE_CONTENT_NOT_PROCESSED, WARNING)
    PARTIAL_TRANSFORM_NOT_PROCESSED = ("Transform content was not processed: {reason}", C.PARTIAL_TRANSFORM_NOT_PROCESSED, WARNING)
    PARTIAL_TRANSFORM_REPLACE_NOT_PROCESSED = ("Transform-and-replace content was not processed: {reason}", C.PARTIAL_TRANSFORM_REPLACE_NOT_PROCESSED, WARNING)
    # fmt: on

    def __init__(self, template: str, code: ErrorCode, severity: str = ERROR) -> None:
        self.template = template
        self.code = code
        self.severity = severity

    def message(self, **fields: Any) -> str:
        return self.template.format_map(_Lenient(fields))

    def error(self, *, location: str = "", **fields: Any) -> RegistryError:
        """This rule's RegistryError; ``location`` names the offending object (its id)."""
        return RegistryError(self.code.value, self.message(**fields), self.severity, location)

    def exception(self, *, location: str = "", **fields: Any) -> XdsError:
        return XdsError(self.error(location=location, **fields))


class _Lenient(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Profile(StrEnum):
    """Which transaction a submission arrived in, which fixes attribute optionality (ITI TF-3
    Table 4.3.1-3) and which actor's codes report metadata problems (Table 4.2.4.1-2: the
    Repository reports XDSRepository*, the Registry XDSRegistry*)."""

    ITI_41 = "ITI-41"  # Provide and Register Document Set-b, checked by the Document Repository
    ITI_42 = "ITI-42"  # Register Document Set-b, checked by the Document Registry
    RAD_68 = "RAD-68"  # Provide and Register Imaging Document Set - MTOM/XOP: ITI-41's rules

    @property
    def repository_side(self) -> bool:
        return self is not Profile.ITI_42


_REPOSITORY_CODES = {
    C.XDS_REGISTRY_METADATA_ERROR.value: C.XDS_REPOSITORY_METADATA_ERROR.value,
    C.XDS_REGISTRY_DUPLICATE_UNIQUE_ID_IN_MESSAGE.value: C.XDS_REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE.value,
}


def as_reported_by(errors: Iterable[RegistryError], profile: Profile) -> list[RegistryError]:
    """The errors with the codes of the actor that detected them (the repository for ITI-41)."""
    if not profile.repository_side:
        return list(errors)
    return [dataclasses.replace(e, code=_REPOSITORY_CODES.get(e.code, e.code)) for e in errors]


# --- stateless validation of a submission -----------------------------------------------------------


@dataclass(frozen=True)
class ExternalReference:
    """An association end that names a UUID not in the submission: the registry must find it
    (and check its type, status and patient) before accepting the submission."""

    uuid: str
    association_id: str
    association_type: str
    end: str  # "source" | "target"
    submission_set_status: str | None = None


def _ids_in(submission: m.Submission) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, objs in (
        ("Association", submission.associations),
        ("Folder", submission.folders),
        ("DocumentEntry", submission.document_entries),
        ("SubmissionSet", [submission.submission_set] if submission.submission_set else []),
    ):
        for o in objs:
            if o.entry_uuid:
                out[o.entry_uuid] = label
    return out


def external_references(submission: m.Submission) -> list[ExternalReference]:
    """Association sources and targets that are UUIDs of objects outside the submission."""
    ids = _ids_in(submission)
    out = []
    for a in submission.associations:
        for end, ref in (("source", a.source), ("target", a.target)):
            if ref and ref not in ids and dt.is_uuid_urn(ref):
                out.append(
                    ExternalReference(ref, a.entry_uuid, a.association_type, end, a.submission_set_status)
                )
    return out


_CODE_ATTRIBUTES = {
    m.DE_CLASS_CODE: "classCode",
    m.DE_CONFIDENTIALITY_CODE: "confidentialityCode",
    m.DE_EVENT_CODE: "eventCodeList",
    m.DE_FORMAT_CODE: "formatCode",
    m.DE_HEALTHCARE_FACILITY_TYPE_CODE: "healthcareFacilityTypeCode",
    m.DE_PRACTICE_SETTING_CODE: "practiceSettingCode",
    m.DE_TYPE_CODE: "typeCode",
    m.SS_CONTENT_TYPE_CODE: "contentTypeCode",
    m.FOL_CODE_LIST: "codeList",
    m.ASSOCIATION_DOCUMENTATION: "associationDocumentation",
}

SUBMISSION_SET_STATUSES = ("Original", "Reference")


_CODE_LIST_RULES = (Rule.CODE_NOT_IN_CODE_LIST, Rule.MIME_TYPE_NOT_IN_CODE_LIST)


class _Validator:
    def __init__(
        self,
        submission: m.Submission,
        profile: Profile,
        codes: CodeList | None,
        authority: str | None,
        unknown_codes_as_warnings: bool = False,
    ) -> None:
        self.s = submission
        self.profile = profile
        self.codes = codes
        self.authority = authority
        self.unknown_codes_as_warnings = unknown_codes_as_warnings
        self.errors: list[RegistryError] = []

    def err(self, rule: Rule, location: str = "", **fields: Any) -> None:
        error = rule.error(location=location, **fields)
        if self.unknown_codes_as_warnings and rule in _CODE_LIST_RULES:
            error = dataclasses.replace(error, severity=WARNING)
        self.errors.append(error)

    def run(self) -> list[RegistryError]:
        s = self.s
        if s.submission_set is None:
            self.err(Rule.SUBMISSION_SET_MISSING)
        else:
            self.submission_set(s.submission_set)
        for de in s.document_entries:
            self.document_entry(de)
        for f in s.folders:
            self.folder(f)
        for a in s.associations:
            self.common("Association", a)
            self.code("Association", a, m.ASSOCIATION_DOCUMENTATION, a.documentation)
        self.duplicates()
        self.associations()
        return self.errors

    # -- shared attribute checks --

    def common(self, label: str, o: m.RegistryObject) -> None:
        id_ = o.entry_uuid
        if not id_:
            self.err(Rule.MISSING_ID, element=label)
        elif id_.startswith("urn:uuid:") and not dt.is_uuid_urn(id_):
            self.err(Rule.INVALID_UUID, id_, what=f"{label} id", value=id_)
        if o.lid:
            if not dt.is_uuid_urn(o.lid):
                self.err(Rule.LID_NOT_UUID, id_, object=label, id=id_, value=o.lid)
            elif o.lid != id_:
                self.err(Rule.LID_DIFFERS, id_, object=label, id=id_, value=o.lid)
        if o.home_community_id and not dt.is_home_community_id(o.home_community_id):
            self.err(Rule.INVALID_HOME_COMMUNITY_ID, id_, object=label, id=id_, value=o.home_community_id)

    def required(self, label: str, o: m.RegistryObject, attribute: str, value: object) -> bool:
        if value is None or value == "" or value == []:
            self.err(
                Rule.ATTRIBUTE_MISSING,
                o.entry_uuid,
                object=label,
                id=o.entry_uuid,
                attribute=attribute,
                profile=self.profile.value,
            )
            return False
        return True

    def dtm(self, label: str, o: m.RegistryObject, attribute: str, value: str | None) -> None:
        if value is not None and not dt.is_dtm(value):
            self.err(
                Rule.INVALID_DTM,
                o.entry_uuid,
                object=label,
                id=o.entry_uuid,
                attribute=attribute,
                value=value,
            )

    def oid(self, label: str, o: m.RegistryObject, attribute: str, value: str | None) -> None:
        if value and not dt.is_oid(value):
            self.err(
                Rule.INVALID_OID,
                o.entry_uuid,
                object=label,
                id=o.entry_uuid,
                attribute=attribute,
                value=value,
            )

    def cx(self, label: str, o: m.RegistryObject, attribute: str, value: str | None, *, domain: bool) -> None:
        if not value:
            return
        problems = dt.cx_problems(value)
        for p in problems:
            self.err(
                Rule.INVALID_CX,
                o.entry_uuid,
                object=label,
                id=o.entry_uuid,
                attribute=attribute,
                value=value,
                problem=p,
            )
        if domain and not problems and self.authority:
            if dt.CX.parse(value).assigning_authority.universal_id != self.authority:
                self.err(
                    Rule.PATIENT_ID_NOT_IN_AFFINITY_DOMAIN,
                    o.entry_uuid,
                    object=label,
                    id=o.entry_uuid,
                    value=value,
                    authority=self.authority,
                )

    def code(self, label: str, o: m.RegistryObject, scheme: str, code: m.Code | None) -> None:
        if code is None:
            return
        attribute = _CODE_ATTRIBUTES[scheme]
        where = dict(object=label, id=o.entry_uuid, attribute=attribute)
        if not code.code:
            self.err(Rule.CODE_INCOMPLETE, o.entry_uuid, part="code (nodeRepresentation)", **where)
        if not code.scheme:
            self.err(Rule.CODE_INCOMPLETE, o.entry_uuid, part="codingScheme", **where)
        elif self.codes is not None and code.code and not self.codes.allows(scheme, code):
            self.err(Rule.CODE_NOT_IN_CODE_LIST, o.entry_uuid, code=code.code, scheme=code.scheme, **where)

    def authors(self, label: str, o: m.RegistryObject, authors: list[m.Author]) -> None:
        id_ = o.entry_uuid
        for a in authors:
            if not (a.person or a.institutions or a.telecommunications):
                self.err(Rule.AUTHOR_INCOMPLETE, id_, object=label, id=id_)
            for rule, check, attribute, values in (
                (Rule.INVALID_XCN, dt.xcn_problems, "authorPerson", [a.person] if a.person else []),
                (Rule.INVALID_XON, dt.xon_problems, "authorInstitution", a.institutions),
                (Rule.INVALID_XTN, dt.xtn_problems, "authorTelecommunication", a.telecommunications),
            ):
                for v in values:
                    for p in check(v):
                        self.err(rule, id_, object=label, id=id_, attribute=attribute, value=v, problem=p)

    def limited(self, label: str, o: m.RegistryObject, flagged: bool) -> None:
        if flagged:
            self.err(Rule.LIMITED_METADATA_PROHIBITED, o.entry_uuid, object=label, id=o.entry_uuid)

    # -- the objects (attribute optionality: ITI TF-3 Table 4.3.1-3, columns XDS DS / XDS DR) --

    def submission_set(self, ss: m.SubmissionSet) -> None:
        label = "SubmissionSet"
        self.common(label, ss)
        self.required(label, ss, "contentTypeCode", ss.content_type_code)
        if self.required(label, ss, "uniqueId", ss.unique_id):
            self.oid(label, ss, "uniqueId", ss.unique_id)
        if self.required(label, ss, "sourceId", ss.source_id):
            self.oid(label, ss, "sourceId", ss.source_id)
        if self.required(label, ss, "patientId", ss.patient_id):
            self.cx(label, ss, "patientId", ss.patient_id, domain=True)
        if self.required(label, ss, "submissionTime", ss.submission_time):
            self.dtm(label, ss, "submissionTime", ss.submission_time)
        self.code(label, ss, m.SS_CONTENT_TYPE_CODE, ss.content_type_code)
        self.authors(label, ss, ss.authors)
        for v in ss.intended_recipients:
            for p in dt.intended_recipient_problems(v):
                self.err(
                    Rule.INVALID_INTENDED_RECIPIENT,
                    ss.entry_uuid,
                    object=label,
                    id=ss.entry_uuid,
                    value=v,
                    problem=p,
                )
        self.limited(label, ss, ss.limited_metadata)

    def document_entry(self, de: m.DocumentEntry) -> None:
        label = "DocumentEntry"
        id_ = de.entry_uuid
        self.common(label, de)
        where = dict(object=label, id=id_)
        if self.required(label, de, "objectType", de.object_type):
            if de.object_type not in m.DOCUMENT_ENTRY_TYPES:
                self.err(Rule.WRONG_OBJECT_TYPE, id_, id=id_, value=de.object_type)
            elif de.on_demand:
                self.err(Rule.ON_DEMAND_NOT_ALLOWED, id_, id=id_, profile=self.profile.value)
        for attribute, value in (
            ("classCode", de.class_code),
            ("confidentialityCode", de.confidentiality_codes),
            ("formatCode", de.format_code),
            ("healthcareFacilityTypeCode", de.healthcare_facility_type_code),
            ("practiceSettingCode", de.practice_setting_code),
            ("typeCode", de.type_code),
            ("creationTime", de.creation_time),
            ("languageCode", de.language_code),
            ("sourcePatientId", de.source_patient_id),
        ):
            self.required(label, de, attribute, value)
        if self.required(label, de, "mimeType", de.mime_type):
            if not dt.is_mime_type(de.mime_type):
                self.err(Rule.INVALID_MIME_TYPE, id_, value=de.mime_type, **where)
            elif self.codes is not None and not self.codes.allows_mime_type(de.mime_type):
                self.err(Rule.MIME_TYPE_NOT_IN_CODE_LIST, id_, value=de.mime_type, **where)
        if self.required(label, de, "uniqueId", de.unique_id) and not dt.is_document_unique_id(de.unique_id):
            self.err(Rule.INVALID_UNIQUE_ID, id_, value=de.unique_id, **where)
        if self.required(label, de, "patientId", de.patient_id):
            self.cx(label, de, "patientId", de.patient_id, domain=True)
        # ITI-41: the repository computes hash and size and adds its repositoryUniqueId (ITI TF-2
        # 3.41.4.1.3); ITI-42 must carry them for every Stable DocumentEntry.
        if not self.profile.repository_side and not de.on_demand:
            self.required(label, de, "hash", de.hash)
            self.required(label, de, "size", de.size)
            self.required(label, de, "repositoryUniqueId", de.repository_unique_id)

        self.dtm(label, de, "creationTime", de.creation_time)
        self.dtm(label, de, "serviceStartTime", de.service_start_time)
        self.dtm(label, de, "serviceStopTime", de.service_stop_time)
        if de.hash is not None and not dt.is_sha1_hex(de.hash):
            self.err(Rule.INVALID_HASH, id_, value=de.hash, **where)
        if de.size is not None and de.size < 0:
            self.err(Rule.INVALID_SIZE, id_, value=de.size, **where)
        self.oid(label, de, "repositoryUniqueId", de.repository_unique_id)
        if de.language_code and not dt.is_language_code(de.language_code):
            self.err(Rule.INVALID_LANGUAGE_CODE, id_, value=de.language_code, **where)
        self.cx(label, de, "sourcePatientId", de.source_patient_id, domain=False)
        for v in de.source_patient_info:
            for p in dt.source_patient_info_problems(v):
                self.err(Rule.INVALID_SOURCE_PATIENT_INFO, id_, value=v, problem=p, **where)
        if de.legal_authenticator:
            for p in dt.xcn_problems(de.legal_authenticator):
                self.err(
                    Rule.INVALID_XCN,
                    id_,
                    attribute="legalAuthenticator",
                    value=de.legal_authenticator,
                    problem=p,
                    **where,
                )
        for v in de.reference_ids:
            for p in dt.cxi_problems(v):
                self.err(Rule.INVALID_REFERENCE_ID, id_, value=v, problem=p, **where)
        if de.uri is not None and (not de.uri or any(c.isspace() for c in de.uri) or ":" not in de.uri):
            self.err(Rule.INVALID_URI, id_, value=de.uri, **where)
        if de.document_availability is not None and de.document_availability not in (
            m.AVAILABILITY_STABLE,
            m.AVAILABILITY_OFFLINE,
        ):
            self.err(Rule.INVALID_DOCUMENT_AVAILABILITY, id_, value=de.document_availability, **where)

        for scheme, code in (
            (m.DE_CLASS_CODE, de.class_code),
            (m.DE_FORMAT_CODE, de.format_code),
            (m.DE_HEALTHCARE_FACILITY_TYPE_CODE, de.healthcare_facility_type_code),
            (m.DE_PRACTICE_SETTING_CODE, de.practice_setting_code),
            (m.DE_TYPE_CODE, de.type_code),
            *((m.DE_CONFIDENTIALITY_CODE, c) for c in de.confidentiality_codes),
            *((m.DE_EVENT_CODE, c) for c in de.event_codes),
        ):
            self.code(label, de, scheme, code)
        self.authors(label, de, de.authors)
        self.limited(label, de, de.limited_metadata)
        self.same_patient(de, Rule.DOC_ENTRY_PATIENT_ID_MISMATCH)

    def folder(self, f: m.Folder) -> None:
        label = "Folder"
        self.common(label, f)
        self.required(label, f, "title", f.title)
        if self.required(label, f, "uniqueId", f.unique_id):
            self.oid(label, f, "uniqueId", f.unique_id)
        if self.required(label, f, "patientId", f.patient_id):
            self.cx(label, f, "patientId", f.patient_id, domain=True)
        self.dtm(label, f, "lastUpdateTime", f.last_update_time)
        for c in f.codes:
            self.code(label, f, m.FOL_CODE_LIST, c)
        self.limited(label, f, f.limited_metadata)
        self.same_patient(f, Rule.FOLDER_PATIENT_ID_MISMATCH)

    def same_patient(self, o: m.DocumentEntry | m.Folder, rule: Rule) -> None:
        ss = self.s.submission_set
        if ss is not None and ss.patient_id and o.patient_id and o.patient_id != ss.patient_id:
            self.err(rule, o.entry_uuid, id=o.entry_uuid, value=o.patient_id, expected=ss.patient_id)

    def duplicates(self) -> None:
        ids = Counter(o.entry_uuid for o in self.s.objects() if o.entry_uuid)
        for id_, n in ids.items():
            if n > 1:
                self.err(Rule.DUPLICATE_ID, id_, id=id_)
        unique_ids: list[tuple[str, str]] = []
        if self.s.submission_set is not None:
            unique_ids.append((self.s.submission_set.unique_id, self.s.submission_set.entry_uuid))
        unique_ids += [(d.unique_id, d.entry_uuid) for d in self.s.document_entries]
        unique_ids += [(f.unique_id, f.entry_uuid) for f in self.s.folders]
        counts = Counter(u for u, _ in unique_ids if u)
        for u, n in counts.items():
            if n > 1:
                where = ", ".join(i for uid, i in unique_ids if uid == u)
                self.err(Rule.DUPLICATE_UNIQUE_ID_IN_MESSAGE, where, value=u)

    # -- associations (ITI TF-3 4.2.2) --

    def associations(self) -> None:
        ids = _ids_in(self.s)
        members: set[str] = set()
        accepted = {m.HAS_MEMBER, *m.RELATIONSHIP_TYPES}
        for a in self.s.associations:
            id_ = a.entry_uuid
            for end, attribute, ref in (
                ("source", "sourceObject", a.source),
                ("target", "targetObject", a.target),
            ):
                if not ref:
                    self.required("Association", a, attribute, ref)
                elif ref not in ids and not dt.is_uuid_urn(ref):
                    if ref.startswith("urn:uuid:"):
                        self.err(Rule.INVALID_UUID, id_, what=f"Association {end}", value=ref)
                    else:
                        self.err(Rule.UNRESOLVED_SYMBOLIC_REFERENCE, id_, id=id_, end=end, target=ref)
            if a.association_type not in accepted:
                self.err(
                    Rule.UNKNOWN_ASSOCIATION_TYPE,
                    id_,
                    id=id_,
                    value=a.association_type,
                    profile=self.profile.value,
                )
                continue
            source_kind, target_kind = ids.get(a.source), ids.get(a.target)
            if a.association_type == m.HAS_MEMBER:
                self.has_member(a, source_kind, target_kind, members)
            else:
                if source_kind != "DocumentEntry":
                    self.err(
                        Rule.RELATIONSHIP_SOURCE_INVALID,
                        id_,
                        id=id_,
                        type=a.association_type,
                        source=a.source,
                    )
                if target_kind is not None:
                    self.err(
                        Rule.RELATIONSHIP_TARGET_INVALID,
                        id_,
                        id=id_,
                        type=a.association_type,
                        target=a.target,
                    )
        for label, objs in (("DocumentEntry", self.s.document_entries), ("Folder", self.s.folders)):
            for o in objs:
                if o.entry_uuid and o.entry_uuid not in members:
                    self.err(Rule.NOT_MEMBER_OF_SUBMISSION_SET, o.entry_uuid, object=label, id=o.entry_uuid)

    def has_member(
        self, a: m.Association, source_kind: str | None, target_kind: str | None, members: set[str]
    ) -> None:
        id_ = a.entry_uuid
        status = a.submission_set_status
        if source_kind in ("DocumentEntry", "Association"):
            self.err(Rule.HAS_MEMBER_SOURCE_INVALID, id_, id=id_, source=a.source, kind=source_kind)
            return
        if source_kind != "SubmissionSet":
            return  # a Folder here or in the registry (an external reference the registry checks)
        if target_kind == "DocumentEntry":
            if status is None:
                self.err(Rule.SUBMISSION_SET_STATUS_MISSING, id_, id=id_)
            elif status != "Original":
                why = "the DocumentEntry is in this submission, so it is Original"
                self.err(Rule.SUBMISSION_SET_STATUS_INVALID, id_, id=id_, value=status, why=why)
        elif target_kind is None and status is not None and status != "Reference":
            why = (
                "Original applies to DocumentEntries of this submission"
                if status == "Original"
                else "it must be Original or Reference"
            )
            self.err(Rule.SUBMISSION_SET_STATUS_INVALID, id_, id=id_, value=status, why=why)
        members.add(a.target)


def validate_submission(
    submission: m.Submission,
    profile: Profile,
    *,
    codes: CodeList | None = None,
    patient_assigning_authority: str | None = None,
    unknown_codes_as_warnings: bool = False,
) -> list[RegistryError]:
    """Every stateless problem of ``submission`` (parse problems included), coded as the actor of
    ``profile`` reports them. Empty means the registry may go on to its state checks: the patient
    is known, uniqueIds are new, :func:`external_references` exist and fit.

    ``codes``: check coded attributes and mimeType against the affinity domain's lists.
    ``unknown_codes_as_warnings``: report codes absent from ``codes`` as warnings (the affinity
    domain's policy, RegistryConfig.unknown_codes) instead of rejecting the submission.
    ``patient_assigning_authority``: the affinity domain's patient id OID (DESIGN 7); patient ids
    of another authority are reported as XDSUnknownPatientId.
    """
    errors = list(submission.parse_errors)
    errors += _Validator(submission, profile, codes, patient_assigning_authority, unknown_codes_as_warnings).run()
    return as_reported_by(errors, profile)
