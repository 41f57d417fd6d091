"""Consent directives (PHIPA): a patient, by HN, withdraws consent to share all of their documents
or named documents / imaging studies, and may reinstate it. docs/consent.md has the rules.

* :mod:`~xds.consent.schema`: the ``consent_directive`` table (history kept, rows superseded);
* :mod:`~xds.consent.directives`: :class:`ConsentDirectives`, withdraw / reinstate / show;
* :mod:`~xds.consent.requester`: who asks (XUA organisation, else TLS certificate, else external);
* :mod:`~xds.consent.enforcement`: the SQL conditions every disclosing path runs under: ITI-18
  (:func:`~xds.consent.enforcement.restrict_plan`, hence ITI-38 and the DI Common Service), ITI-43 /
  ITI-39 (:func:`~xds.consent.enforcement.withheld_documents`), RAD-69 / RAD-75
  (:func:`~xds.consent.enforcement.withheld_studies`);
* :mod:`~xds.consent.retrieval`: what a repository or imaging source withholds, from the registry's
  database or, when the registry is elsewhere, from the registry itself;
* :mod:`~xds.consent.audit`: the audit hook of every directive change;
* :mod:`~xds.consent.cli`: ``xds consent withdraw | reinstate | show``.
"""

from xds.consent.directives import ConsentDirectives, ConsentError, Directive
from xds.consent.requester import EXTERNAL, Requester, requester_of

__all__ = ["EXTERNAL", "ConsentDirectives", "ConsentError", "Directive", "Requester", "requester_of"]
