"""Imaging instances in the node's document store (xds.imaging.storage): the ``imaging`` key space
of the configured filesystem or S3 store (a real SeaweedFS server), apart from the repository's
documents; an instance whose index rows fail is removed; the start-up repair removes what a crash
left; a node upgraded in place still serves the instances it kept under ``<data_dir>/imaging`` and
``xds imaging-migrate`` moves them. RAD-69 answers stay byte-identical throughout."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imaging.conftest import IMAGING_ID, ImagingNode, c_store, node_config, serve
from tests.imaging.studies import CT, HN_AUTHORITY, MR, PDF, Patient, Study, dataset_bytes, make_study
from tests.imaging.test_retrieve import EXPLICIT, IMPLICIT, rad69, series_of
from tests.imaging.wire import retrieve_imaging
from tests.repository.conftest import s3_settings, seaweedfs  # noqa: F401 (fixtures)
from xds.cli import main as xds_main
from xds.config import NodeConfig
from xds.imaging.instance_store import InstanceError, InstanceStore
from xds.imaging.storage import LegacyFallbackStore
from xds.repository.filesystem import FilesystemStore
from xds.repository.s3 import S3Store
from xds.repository.store import new_key


def configure(tmp_path: Path, backend: str, request: pytest.FixtureRequest, **repository: object) -> NodeConfig:
    cfg = node_config(tmp_path / "node")
    if backend == "s3":
        s3 = request.getfixturevalue("s3_settings")
        cfg.repository.store = "s3"
        cfg.repository.s3_endpoint = s3["endpoint_url"]
        cfg.repository.s3_bucket = s3["bucket"]
        cfg.repository.s3_access_key = s3["access_key"]
        cfg.repository.s3_secret_key = s3["secret_key"]
    for key, value in repository.items():
        setattr(cfg.repository, key, value)
    return cfg


@pytest.fixture(params=["filesystem", "s3"])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> NodeConfig:
    return configure(tmp_path, request.param, request)


def bucket_objects(cfg: NodeConfig) -> list[str]:
    rc = cfg.repository
    store = S3Store(bucket=rc.s3_bucket, endpoint_url=rc.s3_endpoint, access_key=rc.s3_access_key,
                    secret_key=rc.s3_secret_key)
    try:
        pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=rc.s3_bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    finally:
        store.close()


def send(node: ImagingNode, tmp_path: Path, name: str) -> Study:
    node.feed(f"8000000000^^^&{HN_AUTHORITY}&ISO")  # the ITI-8 feed made the patient known
    study = make_study(tmp_path / name, Patient(f"MRN-{name}", "8000000000"), f"ACC-{name}",
                       ((CT, 2, True), (MR, 1, False), (PDF, 1, True)))
    assert set(c_store(node.port, study.files)) == {0}
    return study


def assert_retrieved_byte_identical(node: ImagingNode, study: Study) -> None:
    answer = rad69(node, retrieve_imaging(IMAGING_ID, series_of(study), [EXPLICIT, IMPLICIT]))
    assert (answer.status, answer.errors) == ("Success", [])
    for f in study.files:
        assert dataset_bytes(answer.documents[f.stem]) == dataset_bytes(f.read_bytes()), f.name


def test_instances_live_in_the_imaging_key_space_of_the_configured_store(cfg: NodeConfig, tmp_path: Path) -> None:
    with serve(cfg) as node:
        study = send(node, tmp_path, "ks")
        keys = {i.storage_key for i in node.imaging.instances.instances(study.uid)}
        assert len(keys) == len(study.files)
        # headers are read from the store (the manifest copies the patient and study modules)
        published = node.published(study)
        assert published is not None
        # the repository's own store (and so its reconciliation) sees its manifest, not the instances
        repository = node.node.components["repository"]
        manifest_key = repository.index.get(published.manifest_uid).storage_key
        assert [e.key for e in repository.store.list()] == [manifest_key]
        report = repository.reconcile()
        assert (report.unindexed, report.orphans) == ([], [])
        assert_retrieved_byte_identical(node, study)
    assert not (tmp_path / "node" / "imaging").exists()
    if cfg.repository.store == "s3":
        assert bucket_objects(cfg) == sorted([manifest_key, *(f"imaging/{k}" for k in keys)])
        assert not (tmp_path / "node" / "documents" / "imaging").exists()
    else:
        stored = {p.name for p in (tmp_path / "node" / "documents" / "imaging").rglob("*") if p.is_file()}
        assert stored == keys


def test_an_instance_whose_index_rows_fail_is_removed_from_the_store(cfg: NodeConfig, tmp_path: Path,
                                                                     monkeypatch) -> None:
    with serve(cfg) as node:
        instances: InstanceStore = node.imaging.instances
        study = make_study(tmp_path / "s", Patient("MRN-IX"), "ACC-IX", ((CT, 1, True),))

        def broken(*_a: object) -> None:
            raise RuntimeError("database gone")

        monkeypatch.setattr(instances, "_index", broken)
        with pytest.raises(RuntimeError):
            instances.add(study.files[0].read_bytes())
        assert list(instances.store.list()) == []
        assert instances.count() == 0


def test_start_up_repair_removes_unindexed_objects_and_interrupted_writes(cfg: NodeConfig, tmp_path: Path) -> None:
    with serve(cfg) as node:
        study = send(node, tmp_path, "rp")
        store = node.imaging.instances.store
        orphan = store.put(io.BytesIO(b"stored, then the node died before indexing it")).key
        if isinstance(store, S3Store):  # a multipart upload the crash interrupted
            name = store.object_name(new_key())
            store.client.create_multipart_upload(Bucket=store.bucket, Key=name)
        else:  # a temporary file the crash left
            (store.path(orphan).parent / f".{new_key()}.x.tmp").write_bytes(b"partial")
        indexed = {i.storage_key for i in node.imaging.instances.instances(study.uid)}
    time.sleep(1.1)  # S3 timestamps have a resolution of a second
    with serve(cfg) as node:
        store = node.imaging.instances.store
        assert {e.key for e in store.list()} == indexed
        if isinstance(store, S3Store):
            assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
        else:
            assert not [p for p in store.root.rglob("*.tmp")]
        assert_retrieved_byte_identical(node, study)


def test_orphan_policy_log_keeps_what_it_reports(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    cfg = configure(tmp_path, "filesystem", request, orphan_policy="log")
    with serve(cfg) as node:
        orphan = node.imaging.instances.store.put(io.BytesIO(b"unindexed")).key
    with serve(cfg) as node:
        assert node.imaging.instances.store.exists(orphan)


def test_an_unindexable_instance_is_not_stored(cfg: NodeConfig) -> None:
    with serve(cfg) as node:
        with pytest.raises(InstanceError):
            node.imaging.instances.add(b"\x00" * 128 + b"DICM" + b"garbage")
        assert list(node.imaging.instances.store.list()) == []


class ForwardOnly(io.RawIOBase):
    """An object body as S3 hands it out: read, never seek; counts what was fetched."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.fetched = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        self.fetched += len(chunk)
        return len(chunk)


def test_a_header_is_read_from_a_forward_only_stream_without_fetching_the_pixel_data() -> None:
    import pydicom

    from tests.imaging.studies import encode, instance
    from xds.imaging.instance_store import seekable

    ds = instance(Study(Patient("MRN-HDR", "8000000001"), "ACC-HDR"), CT, "1.2.3.4", 1)
    ds.Rows, ds.Columns = 2048, 1024
    ds.PixelData = bytes(2048 * 1024 * 2)  # 4 MiB
    data = encode(ds)
    body = ForwardOnly(data)
    with seekable(body) as f:
        header = pydicom.dcmread(f, stop_before_pixels=True)
    assert header == pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    assert body.fetched < 128 * 1024 < len(data)


def test_a_reader_of_an_old_instance_finds_it_even_when_migrated_meanwhile(tmp_path: Path) -> None:
    store = LegacyFallbackStore(FilesystemStore(tmp_path / "documents").key_space("imaging"),
                                FilesystemStore(tmp_path / "imaging"))
    key = store.legacy.put(io.BytesIO(b"an instance stored before the upgrade")).key
    open_it = store.opener(key)
    assert store.migrate() == 1 and not store.legacy.exists(key)
    with open_it() as f:
        assert f.read() == b"an instance stored before the upgrade"
    assert [e.key for e in store.list()] == [key]
    store.delete(key)
    assert not store.exists(key)


def _to_legacy_directory(cfg: NodeConfig, node_dir: Path) -> None:
    """Put the node's instances where versions before the document-store key space kept them."""
    legacy = FilesystemStore(node_dir / "imaging")
    if cfg.repository.store == "s3":
        rc = cfg.repository
        store = S3Store(bucket=rc.s3_bucket, endpoint_url=rc.s3_endpoint, access_key=rc.s3_access_key,
                        secret_key=rc.s3_secret_key).key_space("imaging")
    else:
        store = FilesystemStore(node_dir / "documents").key_space("imaging")
    for entry in list(store.list()):
        with store.open(entry.key) as f:
            legacy.put(f, entry.key)
        store.delete(entry.key)
    store.close()


@pytest.fixture
def upgraded(cfg: NodeConfig, tmp_path: Path) -> Iterator[tuple[NodeConfig, Study]]:
    with serve(cfg) as node:
        study = send(node, tmp_path, "old")
        assert node.published(study) is not None
    _to_legacy_directory(cfg, tmp_path / "node")
    yield cfg, study


def test_a_node_upgraded_in_place_serves_the_instances_it_kept_under_data_dir_imaging(upgraded, tmp_path: Path) -> None:
    cfg, old = upgraded
    with serve(cfg) as node:
        store = node.imaging.instances.store
        assert isinstance(store, LegacyFallbackStore)
        assert {e.key for e in store.legacy.list()} == {i.storage_key for i in node.imaging.instances.instances(old.uid)}
        assert_retrieved_byte_identical(node, old)  # the start-up repair kept them: they are indexed
        new = send(node, tmp_path, "new")  # new instances go to the configured store
        assert {e.key for e in store.current.list()} == {i.storage_key for i in node.imaging.instances.instances(new.uid)}
        assert_retrieved_byte_identical(node, new)


def test_imaging_migrate_moves_the_old_instances_into_the_configured_store(upgraded, tmp_path: Path, capsys) -> None:
    cfg, old = upgraded
    toml = tmp_path / "node.toml"
    toml.write_text(_toml(cfg))
    assert xds_main(["imaging-migrate", "--config", str(toml), "--data-dir", cfg.data_dir]) == 0
    assert f"{len(old.files)} imaging instance(s) moved" in capsys.readouterr().out
    assert list(FilesystemStore(Path(cfg.data_dir) / "imaging").list()) == []
    with serve(cfg) as node:
        assert not isinstance(node.imaging.instances.store, LegacyFallbackStore)
        assert_retrieved_byte_identical(node, old)
    assert xds_main(["imaging-migrate", "--config", str(toml), "--data-dir", cfg.data_dir]) == 0
    assert "0 imaging instance(s) moved" in capsys.readouterr().out


def _toml(cfg: NodeConfig) -> str:
    rc = cfg.repository
    lines = [
        'name = "test"',
        f'home_community_id = "{cfg.home_community_id}"',
        "[registry]",
        f'patient_assigning_authority = "{cfg.registry.patient_assigning_authority}"',
        "[repository]",
        f'repository_unique_id = "{rc.repository_unique_id}"',
        f'store = "{rc.store}"',
    ]
    if rc.store == "s3":
        lines += [f'{k} = "{getattr(rc, k)}"' for k in ("s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key")]
    lines += ["[imaging]", f'repository_unique_id = "{IMAGING_ID}"']
    return "\n".join(lines) + "\n"


def test_a_live_node_with_an_s3_store_publishes_and_retrieves_dicom_byte_identical(
    tmp_path: Path, s3_settings: dict[str, str]  # noqa: F811
) -> None:
    """`xds serve` with repository.store = "s3": storescu -> KOS registered -> ITI-43 manifest ->
    RAD-69 returns every instance byte-identical, read from the bucket's ``imaging/`` key space."""
    import tomllib

    import pydicom

    from tests.imaging.conftest import wait_for
    from tests.imaging.test_live_pacs import _post, admit, soap, storescu
    from tests.imaging.wire import (
        Series,
        document_unique_ids,
        find_documents,
        read_retrieve,
        retrieve_document_set,
    )
    from tests.live import live_node

    overrides = {
        "imaging": {"study_quiet_seconds": 1},
        "repository": {"store": "s3", "s3_endpoint": s3_settings["endpoint_url"], "s3_bucket": s3_settings["bucket"],
                       "s3_access_key": s3_settings["access_key"], "s3_secret_key": s3_settings["secret_key"]},
    }
    with live_node(tmp_path, overrides=overrides) as live:
        with open(tmp_path / "node.toml", "rb") as f:
            cfg = tomllib.load(f)
        patient = Patient("MRN-S3", "9090909090")
        study = make_study(tmp_path / "src", patient, "ACC-S3", ((CT, 3, True), (CT, 2, False), (MR, 1, True),
                                                                 (PDF, 1, True)))
        admit(live.mllp_port, patient)
        storescu(cfg["imaging"]["port"], study, cfg["imaging"]["ae_title"])
        registry = live.url("/xds/registry")
        [manifest_uid] = wait_for(
            lambda: document_unique_ids(soap(registry, find_documents(patient.affinity_id)).content), timeout=30)
        iti43 = retrieve_document_set(cfg["repository"]["repository_unique_id"], manifest_uid)
        manifest = pydicom.dcmread(io.BytesIO(
            read_retrieve(*_post(live.url("/xds/repository"), iti43)).documents[manifest_uid]))
        requests: dict[str, list[Series]] = {}
        for st in manifest.CurrentRequestedProcedureEvidenceSequence:
            for se in st.ReferencedSeriesSequence:
                requests.setdefault(st.StudyInstanceUID, []).append(
                    Series(se.SeriesInstanceUID, [i.ReferencedSOPInstanceUID for i in se.ReferencedSOPSequence]))
        body = retrieve_imaging(cfg["imaging"]["repository_unique_id"], requests, [EXPLICIT, IMPLICIT])
        answer = read_retrieve(*_post(live.url("/xds/imaging"), body))
        assert (answer.status, answer.errors) == ("Success", [])
        assert set(answer.documents) == {f.stem for f in study.files}
        for f in study.files:
            assert dataset_bytes(answer.documents[f.stem]) == dataset_bytes(f.read_bytes()), f.name

    node_cfg = NodeConfig()
    node_cfg.repository.s3_bucket, node_cfg.repository.s3_endpoint = s3_settings["bucket"], s3_settings["endpoint_url"]
    node_cfg.repository.s3_access_key, node_cfg.repository.s3_secret_key = s3_settings["access_key"], s3_settings["secret_key"]
    objects = bucket_objects(node_cfg)
    assert len([o for o in objects if o.startswith("imaging/")]) == len(study.files)
    assert [o for o in objects if not o.startswith("imaging/")] != []  # the manifest, the repository's
    assert not (tmp_path / "data" / "imaging").exists()
