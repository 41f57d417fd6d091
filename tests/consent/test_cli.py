"""``xds consent withdraw | reinstate | show`` on a node's database (SQLite and PostgreSQL): the HN
completed with the node's assigning authority, each change audited in the node's ATNA trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.consent.helpers import Province
from tests.registry.conftest import AFFINITY_DOMAIN
from xds import cli
from xds.audit.store import AuditStore


@pytest.fixture
def node_toml(db_url: str, tmp_path: Path) -> Path:
    conf = tmp_path / "node.toml"
    conf.write_text(
        f'name = "TESTDIR"\ndata_dir = "{tmp_path / "data"}"\n[database]\nurl = "{db_url}"\n'
        f'[registry]\npatient_assigning_authority = "{AFFINITY_DOMAIN}"\n'
        "[repository]\nenabled = false\n[imaging]\nenabled = false\n"
    )
    return conf


def consent(conf: Path, *args: str) -> int:
    return cli.main(["consent", args[0], "--config", str(conf), *args[1:]])


def test_withdraw_show_reinstate_by_hn(
    data: Province, node_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hn = data.patient.split("^", 1)[0]
    doc = data.document()
    data.submit([doc])
    data.store.record_patient(data.patient, {}, "TEST", "1")

    by = ("--by", "J. Smith, privacy office")
    assert consent(node_toml, "withdraw", "--patient", hn, *by, "--reason", "request 2026-114") == 0
    assert data.find_documents().objects == []
    assert consent(node_toml, "withdraw", "--patient", data.patient, "--document", "1.2.3.99", *by) == 0
    out, err = capsys.readouterr()
    assert "no document 1.2.3.99 of this patient" in err

    assert consent(node_toml, "show", "--patient", hn, "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(d["scope"], d["target"], d["set_by"]) for d in shown] == [
        ("patient", "", "J. Smith, privacy office"),
        ("document", "1.2.3.99", "J. Smith, privacy office"),
    ]
    assert shown[0]["reason"] == "request 2026-114"

    # a partial reinstatement under a full withdrawal is refused
    assert consent(node_toml, "reinstate", "--patient", hn, "--document", "1.2.3.99", *by) == 1
    assert "reinstate the patient" in capsys.readouterr().err
    assert consent(node_toml, "reinstate", "--patient", hn, *by, "--reason", "consents again") == 0
    assert data.find_documents().objects != []
    assert consent(node_toml, "show", "--patient", hn) == 0
    assert "consent stands" in capsys.readouterr().out
    assert consent(node_toml, "show", "--patient", hn, "--history") == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 3

    store = AuditStore.open(f"sqlite:///{tmp_path / 'data' / 'audit.sqlite'}")
    try:
        events = store.accesses(patient=data.patient)
    finally:
        store.close()
    assert [(e.event, e.action, e.user) for e in events] == [("Patient Record", "U", "J. Smith, privacy office")] * 3


def test_an_hn_without_an_assigning_authority_is_a_usage_error(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "bare.toml"
    conf.write_text(f'data_dir = "{tmp_path}"\n[database]\nurl = "{db_url}"\n')
    assert consent(conf, "withdraw", "--patient", "1234567890", "--by", "x") == 2
    assert "patient_assigning_authority" in capsys.readouterr().err
