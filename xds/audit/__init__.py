"""ATNA audit trail (IHE ITI-20 Record Audit Event; DICOM PS3.15 A.5 audit messages).

- :mod:`~xds.audit.context`: what a transaction handler reports (``SoapResponse.audit``);
- :mod:`~xds.audit.codes`, :mod:`~xds.audit.message`: the coded values and the AuditMessage XML;
- :mod:`~xds.audit.events`: one builder per IHE audit message definition;
- :mod:`~xds.audit.store`: the local append-only store and its delivery outbox, and the
  "who accessed this patient's / this study's exams" questions (``xds audit query``);
- :mod:`~xds.audit.syslog`: RFC 5424 over RFC 5425 TLS delivery from the outbox;
- :mod:`~xds.audit.trail`: the node's trail tying them together.
"""

from xds.audit.context import AuditContext, DocumentRef, QueryRef, StudyRef, query_context, submission_context

__all__ = ["AuditContext", "DocumentRef", "QueryRef", "StudyRef", "query_context", "submission_context"]
