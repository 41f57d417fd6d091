"""ITI-41 Provide and Register Document Set-b: the Document Repository's side (ITI TF-2b 3.41.4.1.3),
and RAD-68 (RAD TF-3 4.68), which is ITI-41 carrying a DICOM KOS.

For each DocumentEntry of the submission the repository

1. finds its Document (matched by id, both ways: XDSMissingDocument, XDSMissingDocumentMetadata)
   and refuses a uniqueId used twice in the request (XDSRepositoryDuplicateUniqueIdInMessage);
2. streams the bytes into the store, computing size and SHA-1 on the way; a uniqueId the
   repository already holds is accepted again only with identical content (XDSNonIdenticalHash),
   and is not stored twice;
3. checks the hash and size the source may have sent (XDSRepositoryMetadataError; the hash is
   compared case-insensitively, NIST 11981) and sets hash, size and repositoryUniqueId;

then registers the submission (ITI-42). Documents are stored *before* registration and deleted
again if it fails; the index row of each stays ``pending`` in between, so a crash there is repaired
at start-up (:mod:`xds.repository.reconcile`). With the registry in this node, on the same database,
the rows become ``registered`` (with their size and hash) in the registration's own transaction:
the submission and its documents' rows are committed together or not at all. The registry's errors
and warnings are the response's.
"""

from __future__ import annotations

import binascii
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from xds.audit.context import submission_context
from xds.metadata import ebrim, response, rules
from xds.metadata.errors import RegistryError, XdsError, has_errors
from xds.metadata.model import DocumentEntry, Submission
from xds.metadata.rules import ErrorCode, Profile, Rule
from xds.namespaces import LCM, XDSB
from xds.registry.db import same_database
from xds.repository.registry_client import LocalRegistry, RegistryUnavailable
from xds.repository.store import StoreError, digest
from xds.soap.fault import SoapFault
from xds.soap.message import Attachment, SoapRequest, SoapResponse

if TYPE_CHECKING:
    from xds.registry.store import RegistryTransaction
    from xds.repository import Repository

log = logging.getLogger("xds.repository")

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"

DICOM_MIME_TYPE = "application/dicom"


@dataclass
class _Placed:
    """A document of this request, in the store."""

    entry: DocumentEntry
    storage_key: str
    size: int
    sha1: str
    created: bool  # written by this request: deleted again if the request fails


def profile_of(submission: Submission) -> Profile:
    """RAD-68 when the submission carries a DICOM manifest (RAD TF-3 4.68.4.1.2), else ITI-41."""
    if any(e.mime_type == DICOM_MIME_TYPE for e in submission.document_entries):
        return Profile.RAD_68
    return Profile.ITI_41


def match_documents(submission: Submission, document_ids: list[str]) -> list[RegistryError]:
    """ITI TF-2b 3.41.4.1.3: every DocumentEntry has its Document and every Document its entry;
    document uniqueIds are unique in the request."""
    errors: list[RegistryError] = []
    entry_ids = {e.entry_uuid for e in submission.document_entries}
    counts = Counter(document_ids)
    for doc_id, count in counts.items():
        if count > 1:
            errors.append(Rule.DUPLICATE_ID.error(location=doc_id, id=doc_id))
        if doc_id not in entry_ids:
            errors.append(Rule.MISSING_DOCUMENT_METADATA.error(location=doc_id, id=doc_id))
    for entry in submission.document_entries:
        if entry.entry_uuid not in counts:
            errors.append(Rule.MISSING_DOCUMENT.error(location=entry.entry_uuid, id=entry.entry_uuid))
    seen: set[str] = set()
    for entry in submission.document_entries:
        if entry.unique_id in seen:
            errors.append(
                Rule.DUPLICATE_UNIQUE_ID_IN_REPOSITORY_MESSAGE.error(location=entry.entry_uuid, value=entry.unique_id)
            )
        seen.add(entry.unique_id)
    return errors


class Provide:
    """One ITI-41 request against ``repository`` (a :class:`xds.repository.Repository`)."""

    def __init__(self, repository: Repository, submission: Submission, documents: dict[str, Attachment]) -> None:
        self.repo = repository
        self.submission = submission
        self.documents = documents
        self.placed: list[_Placed] = []
        registry = repository.registry
        # the registry of this node on the index's database: one transaction for both
        self.atomic = isinstance(registry, LocalRegistry) and same_database(registry.engine, repository.index.engine)
        self.recorded = False  # the rows were marked registered in the registration's transaction

    def run(self, document_ids: list[str] | None = None) -> list[RegistryError]:
        """Returns the response's RegistryErrors: none or only warnings means Success."""
        profile = profile_of(self.submission)
        found = self.check(profile, document_ids if document_ids is not None else list(self.documents))
        if has_errors(found):
            return found
        warnings = [e for e in found if not e.is_error]
        try:
            errors = self.store_documents()
            if errors:
                self.undo()
                return errors + warnings
            for p in self.placed:
                p.entry.hash = p.sha1
                p.entry.size = p.size
                p.entry.repository_unique_id = self.repo.repository_unique_id
            result = self.register()
            if not has_errors(result) and not self.recorded:
                # a remote registry, or a submission held for its patient's ADT (nothing written)
                self.repo.index.record_registered(self._created())
        except XdsError as e:
            self.undo()
            return e.errors + warnings
        except BaseException:
            self.undo()
            raise
        if has_errors(result):
            self.undo()
        return warnings + result

    def _created(self) -> list[tuple[str, int, str]]:
        return [(p.entry.unique_id, p.size, p.sha1) for p in self.placed if p.created]

    def _record_registered(self, tx: RegistryTransaction, _submission: Submission) -> None:
        """In the registration's transaction: this request's documents become ``registered``."""
        created = self._created()
        if self.repo.index.record_registered(created, tx.conn) != len(created):
            raise Rule.REPOSITORY_ERROR.exception(reason="a document left the repository while it was registered")
        self.recorded = True

    def check(self, profile: Profile, document_ids: list[str]) -> list[RegistryError]:
        # the parser's findings and the stateless rules (ITI TF-3 Table 4.3.1-3 by profile); the
        # affinity domain's codes and patients are the registry's to check
        found = list(rules.validate_submission(self.submission, profile=profile))
        reported = {e.code for e in found}
        dup = ErrorCode.XDS_REPOSITORY_DUPLICATE_UNIQUE_ID_IN_MESSAGE.value
        found += [
            e for e in match_documents(self.submission, document_ids) if not (e.code == dup and dup in reported)
        ]
        # RAD-68 (RAD TF-3 4.68.4.1.2): a KOS must agree with its DocumentEntry
        from xds.imaging.rad68 import check_submission

        found += check_submission(self.submission.document_entries, self.documents)
        ours = self.repo.repository_unique_id
        for entry in self.submission.document_entries:
            if entry.repository_unique_id and entry.repository_unique_id != ours:
                found.append(
                    Rule.REPOSITORY_UNIQUE_ID_MISMATCH.error(
                        location=entry.entry_uuid, id=entry.entry_uuid, value=entry.repository_unique_id, actual=ours
                    )
                )
        return rules.as_reported_by(found, profile)

    def store_documents(self) -> list[RegistryError]:
        """Put every document into the store; the errors of the metadata's hash and size checks."""
        errors: list[RegistryError] = []
        for entry in self.submission.document_entries:
            p = self._place(entry, self.documents[entry.entry_uuid])
            self.placed.append(p)
            if entry.hash and entry.hash.lower() != p.sha1:
                errors.append(Rule.HASH_MISMATCH.error(location=entry.entry_uuid, id=entry.entry_uuid,
                                                       value=entry.hash, actual=p.sha1))
            if entry.size is not None and entry.size != p.size:
                errors.append(Rule.SIZE_MISMATCH.error(location=entry.entry_uuid, id=entry.entry_uuid,
                                                       value=entry.size, actual=p.size))
        return errors

    def _place(self, entry: DocumentEntry, attachment: Attachment) -> _Placed:
        index, store = self.repo.index, self.repo.store
        key = store.new_key()
        existing = index.claim(entry.unique_id, key, entry.mime_type)
        if existing is None:
            try:
                with attachment.open() as stream:
                    stored = store.put(stream, key, size_hint=attachment.size)
            except BaseException as e:
                index.remove([entry.unique_id])
                if isinstance(e, StoreError):
                    log.error("ITI-41: cannot store document %s: %s", entry.unique_id, e)
                    rule = Rule.REPOSITORY_OUT_OF_RESOURCES if e.out_of_space else Rule.REPOSITORY_ERROR
                    raise rule.exception(location=entry.entry_uuid, reason="the document could not be stored") from None
                raise
            placed = _Placed(entry, key, stored.size, stored.sha1, created=True)
            if not self.atomic:
                # the hash a resubmission is compared with while the remote registry is asked
                index.stored(entry.unique_id, stored.size, stored.sha1)
            return placed
        # The repository holds this uniqueId already: the same document again, or a conflict.
        busy = Rule.REPOSITORY_BUSY.exception(
            location=entry.entry_uuid, reason=f"document {entry.unique_id} is being stored by another request"
        )
        if existing.hash is None:
            raise busy
        with attachment.open() as stream:
            size, sha1 = digest(stream)
        if sha1 != existing.hash:
            raise Rule.NON_IDENTICAL_HASH.exception(location=entry.entry_uuid, value=entry.unique_id)
        if not existing.registered and not self._confirm(existing.unique_id, sha1):
            # another request's object, which it deletes if its registration fails
            raise busy
        return _Placed(entry, existing.storage_key, size, sha1, created=False)

    def _confirm(self, unique_id: str, sha1: str) -> bool:
        """Is a pending document registered after all (an earlier request lost the registry's
        answer)? Marks it registered if so."""
        try:
            held = self.repo.registry.lookup([unique_id])
        except RegistryUnavailable:
            return False
        ours = self.repo.repository_unique_id
        if any(e.repository_unique_id == ours and e.hash == sha1 for e in held.get(unique_id, [])):
            self.repo.index.mark_registered([unique_id])
            return True
        return False

    def register(self) -> list[RegistryError]:
        registry = self.repo.registry
        try:
            if self.atomic:
                assert isinstance(registry, LocalRegistry)
                return registry.register(self.submission, after_write=self._record_registered)
            return registry.register(self.submission)
        except RegistryUnavailable as e:
            if e.maybe_received and self._registered_after_all():
                log.warning("ITI-42 answer lost (%s) but the registry holds the submission's documents", e.reason)
                return []
            log.error("ITI-41: the registry is not available: %s", e.reason)
            raise Rule.REGISTRY_NOT_AVAILABLE.exception(reason="the Document Registry could not be reached") from None

    def _registered_after_all(self) -> bool:
        """After an ITI-42 whose answer was lost: does the registry hold every document now?"""
        try:
            held = self.repo.registry.lookup(p.entry.unique_id for p in self.placed)
        except RegistryUnavailable:
            # cannot tell: keep everything pending, the start-up reconciliation decides
            for p in self.placed:
                p.created = False
            return False
        ours = self.repo.repository_unique_id
        return all(
            any(e.repository_unique_id == ours and e.hash == p.sha1 for e in held.get(p.entry.unique_id, []))
            for p in self.placed
        )

    def undo(self) -> None:
        """Delete what this request stored (its index rows first: a row without an object is
        harmless to reconciliation, an object without a row is an orphan to find)."""
        created = [p for p in self.placed if p.created]
        if not created:
            return
        try:
            self.repo.index.remove(p.entry.unique_id for p in created)
        except Exception:
            log.exception("ITI-41: cannot remove pending index rows; reconciliation will")
            return
        for p in created:
            try:
                self.repo.store.delete(p.storage_key)
            except Exception:
                log.exception("ITI-41: cannot delete document %s; reconciliation will", p.storage_key)


# --- SOAP ---


def read_request(request: SoapRequest) -> tuple[etree._Element, list[tuple[str, etree._Element]]]:
    """The lcm:SubmitObjectsRequest and the (id, xdsb:Document) pairs of the request body."""
    body = request.body_element
    if body.tag != f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest":
        raise SoapFault("Sender", "Expected xdsb:ProvideAndRegisterDocumentSetRequest in the SOAP Body")
    sor = body.find(f"{{{LCM}}}SubmitObjectsRequest")
    if sor is None:
        raise SoapFault("Sender", "The ProvideAndRegisterDocumentSetRequest has no lcm:SubmitObjectsRequest")
    documents = [(d.get("id", ""), d) for d in body.findall(f"{{{XDSB}}}Document")]
    return sor, documents


def attachments_of(request: SoapRequest, documents: list[tuple[str, etree._Element]]) -> dict[str, Attachment]:
    out: dict[str, Attachment] = {}
    for doc_id, element in documents:
        if doc_id in out:
            continue
        try:
            out[doc_id] = request.binary(element)
        except KeyError as e:
            raise SoapFault("Sender", f"Document {doc_id!r} references the MIME part {e.args[0]!r}, which the "
                                      "message does not contain") from None
        except (binascii.Error, ValueError):
            raise SoapFault("Sender", f"Document {doc_id!r} is not valid base64 (xs:base64Binary)") from None
    return out


def handle(repository: Repository, request: SoapRequest) -> SoapResponse:
    sor, documents = read_request(request)
    attachments = attachments_of(request, documents)
    try:
        submission = ebrim.parse_submit_objects_request(sor)
        errors = Provide(repository, submission, attachments).run([d for d, _ in documents])
    finally:
        for a in attachments.values():
            a.close()
    return SoapResponse(response.registry_response(errors), RESPONSE_ACTION,
                        audit=submission_context(submission, repository.repository_unique_id))
