"""The NIST XDS Toolkit stored-query tests (11898 FindSubmissionSets, 11899 FindFolders, 11901
GetDocuments, 11902 GetFolders): their own AdhocQueryRequest files, placeholders filled in, run
against data shaped like what test 12346 loads, with the counts their testplans expect."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from tests.registry.conftest import NIST
from tests.registry.stored_query_data import Answer, Data, query_schema
from xds.config import RegistryConfig
from xds.metadata import model as m
from xds.registry.store import RegistryStore
from xds.registry.stored_query import stored_query

EXPECTED = {
    "SubmissionSets": "submission_sets",
    "Documents": "documents",
    "Folders": "folders",
    "Associations": "associations",
    "ObjectRefs": "object_refs",
}


@pytest.fixture
def db(engine) -> Data:
    return Data(RegistryStore(engine))


def sections(test: str) -> list[Path]:
    return sorted(p for p in (NIST / test).iterdir() if (p / "testplan.xml").is_file())


def run_section(db: Data, section: Path, values: dict[str, str]) -> None:
    plan = etree.parse(str(section / "testplan.xml"))
    sq = plan.find(".//StoredQueryTransaction")
    text = (section / sq.findtext("MetadataFile")).read_text()
    text = re.sub(r"\$(\w+)\$", lambda mo: escape(values[mo.group(1)]), text)
    request = etree.fromstring(text.encode())
    response = stored_query(db.engine, request, config=RegistryConfig())
    assert query_schema().validate(response), query_schema().error_log
    answer = Answer(response)
    assert answer.status == plan.findtext(".//ExpectedStatus")
    expected = {el.tag: int(el.get("count")) for el in sq.find("ExpectedContents") if el.get("count")}
    assert expected
    for tag, count in expected.items():
        assert len(getattr(_counts(answer), EXPECTED[tag])) == count, tag


class _counts:
    def __init__(self, answer: Answer) -> None:
        packages = answer.element.iterfind(".//{*}RegistryObjectList/{*}RegistryPackage")
        kinds: dict[str, set[str]] = {m.SUBMISSION_SET_CLASSIFICATION: set(), m.FOLDER_CLASSIFICATION: set()}
        for p in packages:
            for c in p.iterfind("{*}Classification"):
                kinds.get(c.get("classificationNode", ""), set()).add(p.get("id"))
        self.submission_sets = kinds[m.SUBMISSION_SET_CLASSIFICATION]
        self.folders = kinds[m.FOLDER_CLASSIFICATION]
        self.documents = answer.documents
        self.associations = answer.associations
        self.object_refs = answer.object_refs


@pytest.mark.parametrize("section", sections("11898"), ids=lambda p: p.name)
def test_nist_11898_find_submission_sets(db: Data, section: Path) -> None:
    for day in range(5):
        db.submit([db.document()], ss=db.submission_set(submission_time=f"2004122{day}120000"))
    db.submit([db.document(patient_id=db.other_patient)], ss=db.submission_set(patient_id=db.other_patient))
    run_section(db, section, {"patient_id": db.patient})


@pytest.mark.parametrize("section", sections("11899"), ids=lambda p: p.name)
def test_nist_11899_find_folders(db: Data, section: Path) -> None:
    now = datetime.now(UTC)
    updated = now.strftime("%Y%m%d%H%M%S")
    db.submit([], [db.folder(last_update_time=updated), db.folder(last_update_time=updated)])
    values = {"patient_id": db.patient, "lastyear": str(now.year - 1), "now": str(now.year + 1)}
    run_section(db, section, values)


@pytest.mark.parametrize("section", sections("11901"), ids=lambda p: p.name)
def test_nist_11901_get_documents(db: Data, section: Path) -> None:
    d1, d2 = db.document(), db.document()
    db.submit([d1, d2])
    values = {
        "uid": d1.unique_id,
        "uid1": d1.unique_id,
        "uid2": d2.unique_id,
        "uuid": d1.entry_uuid,
        "uuid1": d1.entry_uuid,
        "uuid2": d2.entry_uuid,
    }
    run_section(db, section, values)


@pytest.mark.parametrize("section", sections("11902"), ids=lambda p: p.name)
def test_nist_11902_get_folders(db: Data, section: Path) -> None:
    f1, f2 = db.folder(), db.folder()
    db.submit([], [f1, f2])
    values = {
        "uuid1": f1.entry_uuid,
        "uuid2": f2.entry_uuid,
        "uniqueid1": f1.unique_id,
        "uniqueid2": f2.unique_id,
    }
    run_section(db, section, values)


def test_nist_11901_home_community_id_is_echoed(db: Data) -> None:
    d = db.document()
    db.submit([d])
    text = (NIST / "11901" / "homeCommunityId" / "query6.xml").read_text().replace("$uid$", d.unique_id)
    response = stored_query(db.engine, etree.fromstring(text.encode()), config=RegistryConfig())
    assert [o.get("home") for o in Answer(response).objects] == ["urn:oid:1.1.1"]
