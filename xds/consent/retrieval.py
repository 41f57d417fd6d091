"""Consent on the retrieve paths: which requested documents (ITI-43, ITI-39) and studies (RAD-69,
RAD-75) a node withholds from a requester.

A withheld document or instance is answered exactly as one the node does not hold:
XDSDocumentUniqueIdError for that DocumentRequest (ITI TF-3 Table 4.2.4.1-2 gives "the requestor is
not authorized to access that document" as one meaning of the code), PartialSuccess or Failure for
the whole answer as for unknown documents. A distinct "consent" error would tell the requester that
the document exists and that the patient withdrew consent, which is itself personal health
information; BPPC likewise leaves a document a policy does not allow to be shared out of the answer.

Directives live in the registry's database. A repository or imaging source that shares it (the DIR
node, or nodes over one PostgreSQL) reads them in one statement per request
(:func:`xds.consent.enforcement.withheld_documents` / ``withheld_studies``). A repository whose
registry is elsewhere (``repository.registry_url``) asks that registry (ITI-18 GetDocuments through
its registry client): what the registry does not return to it is withheld, and nothing is released
when the registry cannot be asked. An imaging source with no registry tables in its database
releases nothing.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine

from xds.consent.enforcement import consent_tables_present, withheld_documents, withheld_studies
from xds.consent.requester import Requester

log = logging.getLogger("xds.consent")

_TABLES: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def _has_directives(engine: Engine) -> bool:
    """Whether ``engine``'s database holds the registry and its consent directives (remembered:
    a node's schema is migrated before it serves)."""
    known = _TABLES.get(engine)
    if known is None:
        with engine.connect() as conn:
            known = consent_tables_present(conn)
        _TABLES[engine] = known
        if not known:
            log.warning(
                "consent: database %s has no registry tables; consent directives are checked "
                "through the registry",
                engine.url.render_as_string(hide_password=True),
            )
    return known


def withheld_by_repository(
    repository: Any, unique_ids: Iterable[str], requester: Requester | None
) -> set[str]:
    """Which of the document ``unique_ids`` a Document Repository (:class:`xds.repository.Repository`)
    withholds from ``requester``."""
    wanted = sorted(set(unique_ids))
    if not wanted:
        return set()
    engine = repository.index.engine
    if _has_directives(engine):
        with engine.connect() as conn:
            return withheld_documents(conn, wanted, requester)
    from xds.repository.registry_client import RegistryUnavailable

    try:
        registered = repository.registry.lookup(wanted)
    except RegistryUnavailable as e:
        log.error(
            "consent: the registry could not be asked about %d document(s) (%s); withheld", len(wanted), e
        )
        return set(wanted)
    return {uid for uid in wanted if not registered.get(uid)}


def withheld_by_imaging_source(
    source: Any, study_uids: Iterable[str], requester: Requester | None
) -> set[str]:
    """Which of the Study Instance UIDs an Imaging Document Source (:class:`xds.imaging.ImagingSource`)
    withholds from ``requester``."""
    wanted = sorted(set(study_uids))
    if not wanted:
        return set()
    engine = source.instances.engine
    if not _has_directives(engine):
        log.error(
            "consent: the imaging source cannot read consent directives; %d study(ies) withheld", len(wanted)
        )
        return set(wanted)
    with engine.connect() as conn:
        return withheld_studies(conn, wanted, requester)
