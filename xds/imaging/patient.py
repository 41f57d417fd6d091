"""The patient a study's manifest is registered under (RAD TF-3 4.68.4.1.2.3.2 patientId; DESIGN.md
section 7, docs/identity.md).

A PACS sends its own ``Patient ID + Issuer of Patient ID`` couplet (0010,0020 / 0010,0021, the
issuer possibly as an OID in its Qualifiers Sequence), and sometimes the health number (HN) in
Other Patient IDs Sequence (0010,1002). The manifest's patientId must be the HN:

1. the couplet's HN in the identity store, which the ADT feeds (ITI-8) maintain, following A40/A47
   to the surviving patient. When the header also carries an HN and that HN is another patient,
   the identity store wins: it is what every other document of the couplet is filed under, and
   what an HN correction by ADT moves; the header is what the modality copied, possibly before that
   correction. The disagreement is logged and audited (:attr:`StudyPatient.conflict`).
2. else the HN the header carries (no ADT has named the couplet yet, or no identity layer);
3. else the study cannot be registered yet (:class:`UnmappedPatient`): a couplet of an issuer some
   feed sends is held until an ADT links it to an HN (``identity.unknown_local_id = "hold"``) or
   refused (``"reject"``); any other is refused.

The couplet is kept as sourcePatientId. The same Patient ID from two issuers is two couplets, so
two patients: nothing here compares Patient IDs without their issuer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from xds.identity.domain import HOLD, Couplet

if TYPE_CHECKING:
    from xds.identity.mapping import PatientMapping
    from xds.imaging.publish import PublishSettings

DICOM_STUDY = "dicom-study"  # identity_held kind: a study whose couplet has no HN yet; payload: its UID


class UnmappedPatient(Exception):
    """No HN for the study. ``hold``: its couplet is one to wait for (then ``couplet`` is set)."""

    def __init__(self, reason: str, couplet: Couplet | None = None, hold: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.couplet = couplet
        self.hold = hold


@dataclass(frozen=True)
class StudyPatient:
    patient_id: str  # the affinity-domain CX the manifest is registered under
    couplet: Couplet | None  # the PACS's local id, when the header names its issuer
    header_patient_id: str | None  # the affinity-domain CX the header carries, if any
    from_identity_store: bool

    @property
    def conflict(self) -> bool:
        """The header names another patient than the identity store's (item 1 above)."""
        return self.from_identity_store and self.header_patient_id not in (None, self.patient_id)


def local_couplet(ds: Dataset, settings: PublishSettings, mapping: PatientMapping) -> Couplet | None:
    """The header's couplet, with the issuer as the identity domain knows it; None when there is
    no Patient ID or issuer, or the Patient ID is itself the HN (its issuer is the affinity domain)."""
    from xds.imaging.publish import issuer_oid
    from xds.metadata.datatypes import is_oid

    patient_id = str(ds.get("PatientID", "") or "").strip()
    namespace = str(ds.get("IssuerOfPatientID", "") or "").strip()
    oid = issuer_oid(ds, settings)
    if is_oid(namespace, max_length=None):
        namespace = ""
    domain = mapping.domain
    if not patient_id or domain.is_hn_authority(namespace, oid):
        return None
    issuer = domain.issuer(namespace, oid)
    return Couplet(patient_id, issuer) if issuer is not None else None


def study_patient(ds: Dataset, settings: PublishSettings, mapping: PatientMapping | None) -> StudyPatient:
    """The patient of the study whose header is ``ds``; raises :class:`UnmappedPatient`."""
    from xds.imaging.publish import affinity_patient_id

    header = affinity_patient_id(ds, settings)
    couplet = local_couplet(ds, settings, mapping) if mapping is not None else None
    if mapping is None or couplet is None:
        if header is not None:
            return StudyPatient(header, couplet, header, False)
        raise UnmappedPatient(
            f"the study has no patient id of the affinity domain {settings.affinity_domain} (Other Patient IDs "
            "Sequence, or Patient ID with that Issuer of Patient ID) and no Patient ID + Issuer of Patient ID "
            "an identity feed maps"
        )
    with mapping.store.reading() as tx:
        row = tx.couplet(couplet)
        hn = tx.resolve(couplet) if row is not None else None
        known_issuer = row is not None or mapping.issuer_known(tx, couplet.issuer)
        header_now = tx.surviving_hn(header) if header is not None and hn is not None else None
    if hn is not None:
        # an HN merged away by A40 names the surviving patient: no disagreement
        return StudyPatient(hn, couplet, header if header_now != hn else hn, True)
    if header is not None:
        return StudyPatient(header, couplet, header, False)
    if not known_issuer:
        raise UnmappedPatient(f"the study has no patient id of the affinity domain {settings.affinity_domain}, and "
                              f"its Patient ID is issued by {couplet.issuer.key}, which no identity feed of this DIR "
                              "sends")
    raise UnmappedPatient(
        f"the study has no patient id of the affinity domain {settings.affinity_domain}, and its Patient ID + "
        f"Issuer of Patient ID ({couplet.issuer.key}) has no health number yet (no ADT has linked one)",
        couplet,
        hold=mapping.domain.unknown_local_id == HOLD,
    )


__all__ = ["DICOM_STUDY", "StudyPatient", "UnmappedPatient", "local_couplet", "study_patient"]
