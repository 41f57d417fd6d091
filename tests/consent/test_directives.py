"""Recording directives: who, when and why; history kept (superseded, never deleted); what a
reinstatement may undo; every change audited once. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect

from tests.consent.helpers import Province
from xds.consent import ConsentDirectives, ConsentError
from xds.consent.audit import DirectiveChange
from xds.consent.schema import consent_directive

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def test_a_withdrawal_records_who_when_and_why(data: Province, consent: ConsentDirectives) -> None:
    [d] = consent.withdraw(data.patient, set_by="clerk 17, privacy office", reason="phone call 2026-03-02", at=AT)
    assert (d.patient_id, d.action, d.scope, d.target) == (data.patient, "withdraw", "patient", "")
    assert (d.set_by, d.reason, d.active, d.withholds) == ("clerk 17, privacy office", "phone call 2026-03-02", True, True)
    assert d.set_at == AT
    assert consent.active(data.patient) == [d]


def test_documents_and_studies_are_one_directive_each(data: Province, consent: ConsentDirectives) -> None:
    made = consent.withdraw(data.patient, documents=["1.2.3", "1.2.4"], studies=["1.2.840.1"], set_by="clerk")
    assert [(d.scope, d.target) for d in made] == [("document", "1.2.3"), ("document", "1.2.4"), ("study", "1.2.840.1")]
    assert [d.id for d in consent.active(data.patient)] == [d.id for d in made]


def test_nothing_is_deleted_a_newer_directive_supersedes(data: Province, consent: ConsentDirectives) -> None:
    [first] = consent.withdraw(data.patient, set_by="clerk", reason="first")
    [again] = consent.withdraw(data.patient, set_by="clerk", reason="confirmed in writing")
    [doc] = consent.withdraw(data.patient, documents=["1.2.3"], set_by="clerk")
    [back] = consent.reinstate(data.patient, set_by="clerk", reason="patient consents again")
    history = consent.history(data.patient)
    assert [h.id for h in history] == [first.id, again.id, doc.id, back.id]
    by_id = {h.id: h for h in history}
    assert by_id[first.id].superseded_by == again.id
    assert by_id[again.id].superseded_by == back.id
    assert by_id[doc.id].superseded_by == back.id  # a full reinstatement ends the partial ones too
    assert by_id[back.id].active and by_id[back.id].action == "reinstate"
    assert all(h.superseded_at is not None for h in history if h.id != back.id)
    assert consent.active(data.patient) == []


def test_a_partial_reinstatement_needs_a_withdrawal_of_that_target(data: Province, consent: ConsentDirectives) -> None:
    with pytest.raises(ConsentError, match="no active withdrawal"):
        consent.reinstate(data.patient, documents=["1.2.3"], set_by="clerk")
    consent.withdraw(data.patient, documents=["1.2.3"], studies=["1.2.840.1"], set_by="clerk")
    [back] = consent.reinstate(data.patient, documents=["1.2.3"], set_by="clerk")
    assert [(d.scope, d.target) for d in consent.active(data.patient)] == [("study", "1.2.840.1")]
    assert back.action == "reinstate"


def test_a_partial_reinstatement_under_a_full_withdrawal_is_refused(data: Province, consent: ConsentDirectives) -> None:
    consent.withdraw(data.patient, documents=["1.2.3"], set_by="clerk")
    consent.withdraw(data.patient, set_by="clerk")
    with pytest.raises(ConsentError, match="reinstate the patient"):
        consent.reinstate(data.patient, documents=["1.2.3"], set_by="clerk")
    assert len(consent.active(data.patient)) == 2


@pytest.mark.parametrize("kw", [{"set_by": ""}, {"set_by": "  "}, {"set_by": "x", "documents": [""]}])
def test_a_directive_needs_its_author_and_real_targets(data: Province, consent: ConsentDirectives, kw) -> None:
    with pytest.raises(ConsentError):
        consent.withdraw(data.patient, **kw)
    assert consent.history(data.patient) == []


def test_every_change_is_audited_once(data: Province, store, caplog: pytest.LogCaptureFixture) -> None:
    changes: list[DirectiveChange] = []
    consent = ConsentDirectives(store.engine, audit_sinks=[changes.append])
    with caplog.at_level("INFO", logger="xds.consent.audit"):
        consent.withdraw(data.patient, documents=["1.2.3"], set_by="clerk", reason="asked")
        consent.reinstate(data.patient, set_by="clerk", reason="asked again")
    assert [(c.action, c.targets, c.set_by, c.reason) for c in changes] == [
        ("withdraw", ["document:1.2.3"], "clerk", "asked"),
        ("reinstate", ["patient"], "clerk", "asked again"),
    ]
    assert changes[1].superseded == [changes[0].recorded[0].id]
    assert len([r for r in caplog.records if r.name == "xds.consent.audit"]) == 2


def test_a_failing_audit_sink_does_not_undo_the_directive(data: Province, store) -> None:
    def broken(change: DirectiveChange) -> None:
        raise RuntimeError("audit repository down")

    consent = ConsentDirectives(store.engine, audit_sinks=[broken])
    consent.withdraw(data.patient, set_by="clerk")
    assert len(consent.active(data.patient)) == 1


def test_the_migration_creates_the_table_the_schema_describes(engine: Engine) -> None:
    columns = {c["name"]: c for c in inspect(engine).get_columns("consent_directive")}
    assert set(columns) == {c.name for c in consent_directive.columns}
    assert {c: columns[c]["nullable"] for c in columns} == {c.name: c.nullable for c in consent_directive.columns}
    indexes = {i["name"] for i in inspect(engine).get_indexes("consent_directive")}
    assert indexes >= {i.name for i in consent_directive.indexes}
