"""Registry built from a node configuration: migrations at start-up, code list, settings."""

from __future__ import annotations

from pathlib import Path

from tests.registry.builders import document_entry, submission
from tests.registry.conftest import PATIENT, node_config
from xds.metadata.codes import parse_codes
from xds.registry import Registry
from xds.registry.db import current_revision, head_revision
from xds.registry.store import DOCUMENT_ENTRY, RegistryStore

CODES = b"""<Codes>
  <CodeType name="classCode" classScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a">
    <Code code="REPORTS" display="Reports" codingScheme="1.3.6.1.4.1.19376.1.2.6.1"/>
  </CodeType>
</Codes>"""


def test_from_config_creates_and_migrates_the_default_sqlite_database(tmp_path: Path) -> None:
    cfg = node_config()
    cfg.data_dir = str(tmp_path / "var")
    registry = Registry.from_config(cfg)
    try:
        assert (tmp_path / "var" / "registry.sqlite").exists()
        assert current_revision(registry.engine) == head_revision()
        registry.store.record_patient(PATIENT, {}, "feed", "1")
        assert registry.register(submission(document_entry())) == []
        assert registry.store.count(DOCUMENT_ENTRY) == 1
    finally:
        registry.close()


def test_register_checks_codes_against_the_affinity_domain_code_list(store: RegistryStore) -> None:
    store.record_patient(PATIENT, {}, "feed", "1")
    registry = Registry(store, node_config(check_codes=True).registry, parse_codes(CODES))
    errors = registry.register(submission(document_entry()))
    assert [e.code for e in errors] == ["XDSRegistryMetadataError"]
    assert "classCode" in errors[0].context
    assert store.count(DOCUMENT_ENTRY) == 0


def test_register_ignores_the_code_list_unless_check_codes(store: RegistryStore) -> None:
    store.record_patient(PATIENT, {}, "feed", "1")
    registry = Registry(store, node_config(check_codes=False).registry, parse_codes(CODES))
    assert registry.register(submission(document_entry())) == []


def test_register_rejects_a_patient_of_another_assigning_authority_with_XDSUnknownPatientId(
    store: RegistryStore,
) -> None:
    foreign = "123^^^&9.9.9&ISO"
    store.record_patient(foreign, {}, "feed", "1")
    registry = Registry(store, node_config().registry)
    errors = registry.register(submission(document_entry(patient=foreign), patient=foreign))
    assert "XDSUnknownPatientId" in {e.code for e in errors}
