"""ITI-42 Register Document Set-b: the Document Registry's side (ITI TF-2b 3.42.4.1.3, ITI TF-3 4.1).

A submission is checked first on its own (:func:`xds.metadata.rules.validate_submission`), then
against the registry's state, and then stored whole, in one database transaction, or not at all.
Registry-state checks (each raising its rule of :mod:`xds.metadata.rules`):

* every patient id is known from the identity feed (ITI-8) and not merged away;
* no submitted entryUUID is already used; no SubmissionSet or Folder uniqueId is already used; a
  DocumentEntry uniqueId already registered is accepted only as a resubmission of the same
  document, same hash and same size (ITI TF-3 4.2.4.1; NIST test 12004);
* every association end is in the submission or in the registry, of the right kind, for the same
  patient; RPLC / XFRM_RPLC / APND / XFRM / signs target an Approved DocumentEntry.

Then the registry's own changes (ITI TF-3 4.1.6 - 4.1.9):

* symbolic ids become fresh ``urn:uuid:`` ids, and references follow;
* every submitted object is Approved; lid = entryUUID, version 1;
* a replacement (RPLC, XFRM_RPLC) deprecates the original and, recursively, its addenda and
  transformations (APND, XFRM: CP 117, NIST 12022), and puts the replacement into each Folder
  holding the original (NIST 12327);
* a Folder created by the submission gets lastUpdateTime = now; one that receives a document
  (HasMember Folder -> DocumentEntry) too (ITI TF-3 4.2.3.4.4; NIST 12323);
* extra metadata (``urn:`` slots, ITI TF-3 4.2.3.1.1) is stored, or dropped with an
  XDSExtraMetadataNotSaved warning when the registry is configured not to keep it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree
from sqlalchemy.exc import IntegrityError, OperationalError

from xds.config import RegistryConfig
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.metadata.errors import RegistryError, XdsError, has_errors
from xds.metadata.rules import ErrorCode, Rule
from xds.registry import store as st

log = logging.getLogger("xds.registry")

# Association types an ITI-42 submission may carry (ITI TF-3 4.2.2); ITI-57 adds the update ones.
_ITI42_ASSOCIATION_TYPES = frozenset((m.HAS_MEMBER, *m.RELATIONSHIP_TYPES))
_DOCUMENT_TARGETS = frozenset(m.RELATIONSHIP_TYPES)


def is_uuid_id(value: str) -> bool:
    return value.lower().startswith("urn:uuid:")


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def assign_entry_uuids(submission: m.Submission) -> dict[str, str]:
    """Replace symbolic ids (``Document01``) by fresh ``urn:uuid:`` ids in every object, lid and
    association end, as the registry must before storing; returns the map."""
    mapping: dict[str, str] = {}
    for obj in submission.objects():
        if obj.entry_uuid and not is_uuid_id(obj.entry_uuid):
            mapping[obj.entry_uuid] = new_uuid()
    for obj in submission.objects():
        obj.entry_uuid = mapping.get(obj.entry_uuid, obj.entry_uuid)
        if obj.lid is not None:
            obj.lid = mapping.get(obj.lid, obj.lid)
    for a in submission.associations:
        a.source = mapping.get(a.source, a.source)
        a.target = mapping.get(a.target, a.target)
    return mapping


def dtm_now(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%d%H%M%S")


# --- canonical fragments -------------------------------------------------------------------------

Serializer = Callable[[m.RegistryObject], str]
Reparser = Callable[[str, str], m.RegistryObject]
AfterWrite = Callable[[st.RegistryTransaction, m.Submission], None]


def default_serializer(obj: m.RegistryObject) -> str:
    """The canonical ebRIM 3.0 XML of ``obj`` (what LeafClass answers are assembled from), written
    as text (:func:`ebrim.fragment_text`: the lxml tree serialiser's output, without the tree)."""
    return ebrim.fragment_text(obj)


def default_reparser(kind: str, fragment: str) -> m.RegistryObject:
    """A stored fragment back into the model, to change it and serialise it again."""
    return ebrim.parse_registry_object(etree.fromstring(fragment, _FRAGMENT_PARSER))


_FRAGMENT_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


# --- the registration ------------------------------------------------------------------------------


@dataclass
class _Resolved:
    """An association end: where it is and what it is."""

    kind: str
    patient_id: str | None
    status: str
    in_submission: bool
    object_type: str | None = None


@dataclass
class _Plan:
    deprecate: dict[str, str] = field(default_factory=dict)  # entry_uuid -> kind (registry objects)
    touch_folders: set[str] = field(default_factory=set)  # folders in the registry to re-stamp
    extra_associations: list[m.Association] = field(default_factory=list)


class Registration:
    """One ITI-42 submission going into the registry: :meth:`prepare` the submitted objects as
    registered, then :meth:`run` the checks and writes inside a transaction."""

    tx: st.RegistryTransaction

    def __init__(
        self,
        submission: m.Submission,
        settings: RegistryConfig,
        now: str,
        serialize: Serializer,
        reparse: Reparser,
    ) -> None:
        self.sub = submission
        self.settings = settings
        self.now = now
        self.serialize = serialize
        self.reparse = reparse
        self.errors: list[RegistryError] = []
        self.fragments: dict[int, str] = {}  # id() of each submitted object -> its fragment
        ss = submission.submission_set
        assert ss is not None
        self.ss = ss
        self.local: dict[str, tuple[str, m.RegistryObject]] = {ss.entry_uuid: (st.SUBMISSION_SET, ss)}
        for de in submission.document_entries:
            self.local[de.entry_uuid] = (st.DOCUMENT_ENTRY, de)
        for f in submission.folders:
            self.local[f.entry_uuid] = (st.FOLDER, f)
        for a in submission.associations:
            self.local[a.entry_uuid] = (st.ASSOCIATION, a)

    def prepare(self) -> None:
        """What registering changes on the submitted objects themselves (ITI TF-3 4.1.6 - 4.1.9:
        Approved, lid = entryUUID, version 1, a new Folder's lastUpdateTime), and their canonical
        fragments. Done before the transaction: it depends on nothing stored, and serialising is
        much of a registration's work, which writers would otherwise wait for one by one."""
        for obj in self.sub.objects():
            obj.status = m.STATUS_APPROVED
        for obj in (*self.sub.document_entries, *self.sub.folders):
            obj.lid = obj.entry_uuid
            obj.version_name = "1"
        for f in self.sub.folders:
            f.last_update_time = self.now  # ITI TF-3 4.2.3.4.4: set by the registry
        self.fragments = {id(obj): self.serialize(obj) for obj in self.sub.objects()}

    def run(self, tx: st.RegistryTransaction) -> None:
        self.tx = tx
        self.check_patients()
        self.check_entry_uuids()
        self.check_unique_ids()
        plan = self.check_associations()
        if self.errors:
            raise XdsError(self.errors)
        self.write(plan)

    # -- checks --

    def check_patients(self) -> None:
        ids = {self.ss.patient_id}
        ids.update(de.patient_id for de in self.sub.document_entries)
        ids.update(f.patient_id for f in self.sub.folders)
        ids.discard("")
        if self.settings.accept_unknown_patients or not ids:
            return
        known = self.tx.patient_merges(ids)  # id -> merged into (absent: unknown)
        for pid in sorted(ids):
            if pid not in known or known[pid]:
                self.errors.append(Rule.UNKNOWN_PATIENT_ID.error(location=pid, patient_id=pid))

    def check_entry_uuids(self) -> None:
        # No catalogue rule names this case; XDSRegistryMetadataError is what IPF reports too.
        taken = self.tx.object_kinds(self.local)
        for entry_uuid, kind in taken.items():
            self.errors.append(
                RegistryError(
                    ErrorCode.XDS_REGISTRY_METADATA_ERROR.value,
                    f"entryUUID {entry_uuid} is already used by a {kind} in the registry",
                    location=entry_uuid,
                )
            )

    def check_unique_ids(self) -> None:
        for kind, objs in ((st.SUBMISSION_SET, [self.ss]), (st.FOLDER, self.sub.folders)):
            for uid in sorted(self.tx.existing_unique_ids(kind, [o.unique_id for o in objs])):
                loc = next(o.entry_uuid for o in objs if o.unique_id == uid)
                self.errors.append(Rule.DUPLICATE_UNIQUE_ID_IN_REGISTRY.error(location=loc, value=uid))
        existing = self.tx.document_entries_by_unique_id(de.unique_id for de in self.sub.document_entries)
        for de in self.sub.document_entries:
            for row in existing.get(de.unique_id, []):
                # ITI TF-3 4.2.4.1: the same document may be registered again; another one may not
                if (row.hash or "").lower() != (de.hash or "").lower():
                    self.errors.append(
                        Rule.NON_IDENTICAL_HASH.error(location=de.entry_uuid, value=de.unique_id)
                    )
                elif row.size != de.size:
                    self.errors.append(
                        Rule.NON_IDENTICAL_SIZE.error(location=de.entry_uuid, value=de.unique_id)
                    )
                else:
                    continue
                break

    def _resolve(self, ids: Iterable[str]) -> dict[str, _Resolved]:
        out: dict[str, _Resolved] = {}
        remote: list[str] = []
        for i in ids:
            if i in self.local:
                kind, obj = self.local[i]
                out[i] = _Resolved(
                    kind,
                    getattr(obj, "patient_id", None),
                    m.STATUS_APPROVED,
                    True,
                    getattr(obj, "object_type", None),
                )
            else:
                remote.append(i)
        if remote:
            kinds = self.tx.object_kinds(remote)
            by_kind: dict[str, list[str]] = {}
            for i, k in kinds.items():
                by_kind.setdefault(k, []).append(i)
            # locked: a concurrent submission replacing the same document waits, then sees it Deprecated
            for i, row in self.tx.document_entries(by_kind.get(st.DOCUMENT_ENTRY, []), lock=True).items():
                out[i] = _Resolved(st.DOCUMENT_ENTRY, row.patient_id, row.status, False, row.object_type)
            for i, frow in self.tx.folders(by_kind.get(st.FOLDER, []), lock=True).items():
                out[i] = _Resolved(st.FOLDER, frow.patient_id, frow.status, False)
            for i, srow in self.tx.submission_sets(by_kind.get(st.SUBMISSION_SET, [])).items():
                out[i] = _Resolved(st.SUBMISSION_SET, srow.patient_id, srow.status, False)
            for i, arow in self.tx.associations(by_kind.get(st.ASSOCIATION, [])).items():
                out[i] = _Resolved(st.ASSOCIATION, None, arow.status, False)
        return out

    def check_associations(self) -> _Plan:
        plan = _Plan()
        ends = self._resolve({e for a in self.sub.associations for e in (a.source, a.target)})
        replaced: list[tuple[m.Association, str]] = []
        for a in self.sub.associations:
            if a.association_type not in _ITI42_ASSOCIATION_TYPES:
                self.errors.append(
                    Rule.UNKNOWN_ASSOCIATION_TYPE.error(
                        location=a.entry_uuid, id=a.entry_uuid, value=a.association_type, profile="ITI-42"
                    )
                )
                continue
            src, tgt = ends.get(a.source), ends.get(a.target)
            for end, ident, res in (("sourceObject", a.source, src), ("targetObject", a.target, tgt)):
                if res is None:
                    self.errors.append(
                        Rule.UNRESOLVED_REFERENCE.error(
                            location=a.entry_uuid, id=ident, what=f"{end} of {a.entry_uuid}"
                        )
                    )
            if src is None or tgt is None:
                continue
            if a.association_type == m.HAS_MEMBER:
                self._check_has_member(a, src, tgt, plan)
            else:
                if self._check_relationship(a, src, tgt) and a.association_type in m.REPLACEMENT_TYPES:
                    replaced.append((a, a.target))
        if not self.errors:
            for a, target in replaced:
                self._plan_replacement(a, target, plan)
        return plan

    def _check_has_member(self, a: m.Association, src: _Resolved, tgt: _Resolved, plan: _Plan) -> None:
        if src.kind == st.SUBMISSION_SET:
            if not src.in_submission:
                self.errors.append(
                    Rule.SUBMISSION_SET_SOURCE_FOREIGN.error(
                        location=a.entry_uuid, id=a.entry_uuid, source=a.source
                    )
                )
                return
            if tgt.kind == st.SUBMISSION_SET:
                self._wrong_type(a, "targetObject", a.target, tgt, "a DocumentEntry, Folder or Association")
            elif tgt.kind in (st.DOCUMENT_ENTRY, st.FOLDER) and not tgt.in_submission:
                # a reference to an existing object (SubmissionSetStatus Reference)
                self._same_patient(a, a.target, tgt, self.ss.patient_id)
            return
        if src.kind == st.FOLDER:
            if tgt.kind != st.DOCUMENT_ENTRY:
                self._wrong_type(a, "targetObject", a.target, tgt, "a DocumentEntry")
                return
            if not src.in_submission and src.status != m.STATUS_APPROVED:
                self._wrong_type(a, "sourceObject", a.source, src, "an Approved Folder")
                return
            # ITI TF-3 4.1.9: a Folder holds documents of its own patient only
            self._same_patient(a, a.target, tgt, src.patient_id)
            if not src.in_submission:
                self._same_patient(a, a.source, src, self.ss.patient_id)
                plan.touch_folders.add(a.source)
            return
        self.errors.append(
            Rule.HAS_MEMBER_SOURCE_INVALID.error(
                location=a.entry_uuid, id=a.entry_uuid, source=a.source, kind=src.kind
            )
        )

    def _check_relationship(self, a: m.Association, src: _Resolved, tgt: _Resolved) -> bool:
        """RPLC, XFRM_RPLC, APND, XFRM, signs, IsSnapshotOf (ITI TF-3 4.2.2.2)."""
        if src.kind != st.DOCUMENT_ENTRY or not src.in_submission:
            self.errors.append(
                Rule.RELATIONSHIP_SOURCE_INVALID.error(
                    location=a.entry_uuid, id=a.entry_uuid, type=a.association_type, source=a.source
                )
            )
            return False
        if tgt.kind != st.DOCUMENT_ENTRY:
            self._wrong_type(a, "targetObject", a.target, tgt, "a DocumentEntry")
            return False
        if tgt.in_submission and a.association_type != m.SIGNS:
            self.errors.append(
                Rule.RELATIONSHIP_TARGET_INVALID.error(
                    location=a.entry_uuid, id=a.entry_uuid, type=a.association_type, target=a.target
                )
            )
            return False
        if a.association_type == m.IS_SNAPSHOT_OF and tgt.object_type != m.ON_DEMAND_DOCUMENT_ENTRY:
            self._wrong_type(a, "targetObject", a.target, tgt, "an On-Demand DocumentEntry")
            return False
        if tgt.status != m.STATUS_APPROVED:
            self.errors.append(
                Rule.DEPRECATED_TARGET.error(location=a.entry_uuid, id=a.entry_uuid, target=a.target)
            )
            return False
        return self._same_patient(a, a.target, tgt, src.patient_id)

    def _plan_replacement(self, a: m.Association, target: str, plan: _Plan) -> None:
        # ITI TF-3 4.1.6.1 (CP 117): the original and its addenda and transformations, recursively
        frontier = [target]
        while frontier:
            for uid in frontier:
                plan.deprecate[uid] = st.DOCUMENT_ENTRY
            children = self.tx.associations_of(targets=frontier, types=(m.APND, m.XFRM))
            frontier = [c.source_uuid for c in children if c.source_uuid not in plan.deprecate]
        # ITI TF-3 4.1.6.1: the replacement joins every Folder holding the original (NIST 12327)
        already = {(x.source, x.target) for x in self.sub.associations if x.association_type == m.HAS_MEMBER}
        for member in self.tx.associations_of(targets=[target], types=(m.HAS_MEMBER,)):
            folder = self.tx.folders([member.source_uuid]).get(member.source_uuid)
            if folder is None or folder.status != m.STATUS_APPROVED:
                continue
            if (folder.entry_uuid, a.source) not in already:
                plan.extra_associations.append(
                    m.Association(
                        entry_uuid=new_uuid(),
                        status=m.STATUS_APPROVED,
                        association_type=m.HAS_MEMBER,
                        source=folder.entry_uuid,
                        target=a.source,
                    )
                )
                already.add((folder.entry_uuid, a.source))
            plan.touch_folders.add(folder.entry_uuid)

    def _same_patient(self, a: m.Association, ident: str, res: _Resolved, expected: str | None) -> bool:
        if res.patient_id is not None and expected is not None and res.patient_id != expected:
            self.errors.append(
                Rule.REFERENCED_PATIENT_ID_MISMATCH.error(
                    location=a.entry_uuid, id=a.entry_uuid, target=ident, value=res.patient_id
                )
            )
            return False
        return True

    def _wrong_type(self, a: m.Association, end: str, ident: str, res: _Resolved, expected: str) -> None:
        self.errors.append(
            Rule.REFERENCED_OBJECT_WRONG_TYPE.error(
                location=a.entry_uuid,
                id=a.entry_uuid,
                end=end,
                target=ident,
                kind=res.kind,
                expected=expected,
            )
        )

    # -- writes --

    def write(self, plan: _Plan) -> None:
        fragment = self.fragments
        ss_uuid = self.ss.entry_uuid
        tx = self.tx
        tx.add_submission_set(self.ss, fragment[id(self.ss)])
        tx.add_document_entries([(de, fragment[id(de)]) for de in self.sub.document_entries], ss_uuid)
        tx.add_folders([(f, fragment[id(f)]) for f in self.sub.folders])
        tx.add_associations([(a, fragment[id(a)]) for a in self.sub.associations], ss_uuid)
        tx.add_associations([(a, self.serialize(a)) for a in plan.extra_associations], None)
        rows = tx.document_entries(plan.deprecate)
        for entry_uuid in plan.deprecate:
            row = rows.get(entry_uuid)
            if row is None or row.status == m.STATUS_DEPRECATED:
                continue
            obj = self.reparse(st.DOCUMENT_ENTRY, row.fragment)
            obj.status = m.STATUS_DEPRECATED
            tx.set_status(st.DOCUMENT_ENTRY, entry_uuid, m.STATUS_DEPRECATED, self.serialize(obj))
        for entry_uuid, frow in tx.folders(plan.touch_folders).items():
            folder = self.reparse(st.FOLDER, frow.fragment)
            assert isinstance(folder, m.Folder)
            folder.last_update_time = self.now
            tx.set_folder_last_update_time(entry_uuid, self.now, self.serialize(folder))


def strip_extra_metadata(submission: m.Submission) -> list[RegistryError]:
    """Drop extra metadata slots (registry configured not to keep them): one warning per slot."""
    warnings = []
    for obj in submission.objects():
        for name in list(obj.extra_slots):
            warnings.append(
                Rule.EXTRA_METADATA_NOT_SAVED.error(
                    location=obj.entry_uuid, object=type(obj).__name__, id=obj.entry_uuid, name=name
                )
            )
        obj.extra_slots = {}
    return warnings


def register_submission(
    store: st.RegistryStore,
    submission: m.Submission,
    settings: RegistryConfig,
    *,
    validate: Callable[[m.Submission], list[RegistryError]] | None = None,
    now: datetime | None = None,
    serialize: Serializer = default_serializer,
    reparse: Reparser = default_reparser,
    after_write: AfterWrite | None = None,
) -> list[RegistryError]:
    """Register ``submission``; returns the RegistryErrors of the response (warnings only on
    success). On any error nothing is written. ``after_write`` runs in the same transaction once
    the submission is written (the identity layer records which couplet it came through)."""
    found = list(validate(submission)) if validate is not None else []
    if has_errors(found):
        return found
    if submission.submission_set is None:
        return [Rule.SUBMISSION_SET_MISSING.error()]
    warnings = [e for e in found if not e.is_error]
    assign_entry_uuids(submission)
    if settings.extra_metadata != "store":
        warnings += strip_extra_metadata(submission)
    registration = Registration(submission, settings, dtm_now(now), serialize, reparse)
    registration.prepare()
    try:
        with store.transaction() as tx:
            registration.run(tx)
            if after_write is not None:
                after_write(tx, submission)
    except XdsError as e:
        return e.errors + warnings
    except IntegrityError:
        # a concurrent submission took a uniqueId or entryUUID between our checks and our insert
        log.warning("ITI-42 lost a race on a unique key; rejected", exc_info=True)
        return [Rule.DUPLICATE_UNIQUE_ID_IN_REGISTRY.error(value=submission.submission_set.unique_id)]
    except OperationalError:
        log.exception("ITI-42 database error")
        return [Rule.REGISTRY_BUSY.error(reason="the registry database is not available")]
    return warnings
