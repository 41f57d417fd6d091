"""DICOM ingest (xds.imaging.scp, xds.imaging.instance_store) and the RAD-68 KOS checks
(xds.imaging.rad68) under mutated NIST KOS manifests and images.

Mutations are byte-level (of the data set after the file meta information) and element-level:
values replaced by raw bytes the VR does not allow, VRs changed, sequences emptied or filled with
garbage, identifying UIDs removed or made hostile, the transfer syntax of the meta information
made to lie about the data set's encoding.

Properties: the KOS check gives coded XDSRepositoryMetadataErrors, never an exception; a C-STORE
(handled in process, and sent by a real SCU to the node's listener) is stored (0000) or refused
with Cannot Understand (C000), never an Out of Resources (A700) for what is only malformed, and
nothing is logged at ERROR; the sentinel instance stored first is still there, byte for byte.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.tag import Tag
from pydicom.uid import generate_uid
from pynetdicom import AE, _config

from tests.fuzz import seeds
from tests.fuzz.conftest import fuzz, leaks, tracebacks
from tests.fuzz.mutations import DICOM_TOKENS, mutated_bytes
from xds.imaging.instance_store import part10
from xds.imaging.rad68 import DICOM_MIME_TYPE, KOS_SOP_CLASS, check_kos
from xds.imaging.scp import CANNOT_UNDERSTAND, SUCCESS
from xds.metadata import model as m
from xds.metadata.rules import ErrorCode
from xds.soap.message import Attachment

pytestmark = [seeds.needs_corpus, pytest.mark.filterwarnings("ignore::UserWarning")]

FILES = seeds.dicom_files()
KOS = seeds.kos_files()


@dataclass(frozen=True)
class Seed:
    meta: FileMetaDataset
    dataset: bytes  # the data set as encoded in the file, after the meta information
    implicit: bool
    little: bool


def _seed(path: Path) -> Seed:
    data = path.read_bytes()
    with io.BytesIO(data) as f:
        ds = pydicom.dcmread(f, stop_before_pixels=False)
        meta = ds.file_meta
    # the offset of the data set: preamble, DICM, the meta group written as received
    offset = 132 + 12 + int(meta.FileMetaInformationGroupLength)
    ts = meta.TransferSyntaxUID
    return Seed(meta, data[offset:], ts.is_implicit_VR, ts.is_little_endian)


SEEDS = [_seed(p) for p in FILES]


def _phi(path: Path) -> set[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    values = {str(ds.get("PatientID", "")), str(ds.get("PatientBirthDate", "")), str(ds.get("PatientName", ""))}
    return {v.strip() for v in values if len(v.strip()) >= 5}


PHI = set().union(*(_phi(p) for p in FILES))
KOS_SEEDS = [s for s, p in zip(SEEDS, FILES, strict=True) if p in KOS]

KEYWORDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID",
            "IssuerOfPatientID", "AccessionNumber", "InstanceNumber", "Modality", "SpecificCharacterSet",
            "PatientName", "CurrentRequestedProcedureEvidenceSequence", "OtherPatientIDsSequence",
            "IssuerOfPatientIDQualifiersSequence", "ReferencedRequestSequence", "ContentSequence",
            "ReferencedSeriesSequence", "ReferencedSOPSequence")
VALUES = (b"", b"1.2.3", b"1." * 40, b"A\\B\\C", "ÄÖÜ".encode("latin-1"), b"\x00" * 4, b"x" * 300, b"ISO\x00",
          KOS_SOP_CLASS.encode(), b"-1", b"99999999999", b"\\", b" ", b"ISO_IR 999", b"ISO 2022 IR 87\\ISO 2022 IR 13",
          b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"\xff" * 7)
VRS = ("UN", "SQ", "US", "FD", "OB", "UI", "LO", "PN", "AT", "UT")
# What a C-STORE can carry: a transfer syntax the listener accepted (which may still lie about the
# data set's encoding); a document (RAD-68) can carry anything.
WIRE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
                 "1.2.840.10008.1.2.4.50")
DOCUMENT_SYNTAXES = (*WIRE_SYNTAXES, "1.2.3.4", "", "\\")


def encode(ds: Dataset, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


@st.composite
def element_mutations(draw, syntaxes: tuple[str, ...] = WIRE_SYNTAXES) -> tuple[FileMetaDataset, bytes]:
    """(file meta, data set bytes) of a seed whose elements were edited."""
    seed = draw(st.sampled_from(SEEDS))
    ds = pydicom.filereader.read_dataset(io.BytesIO(seed.dataset), seed.implicit, seed.little)
    meta = copy.deepcopy(seed.meta)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("delete", "raw_value", "raw_value", "vr", "nest", "transfer_syntax")))
        tag = Tag(pydicom.datadict.tag_for_keyword(draw(st.sampled_from(KEYWORDS))))
        vr = pydicom.datadict.dictionary_VR(tag)
        if op == "delete":
            if tag in ds:
                del ds[tag]
        elif op == "raw_value":
            value = draw(st.one_of(st.sampled_from(VALUES), st.binary(max_size=40)))
            ds[tag] = RawDataElement(tag, None if seed.implicit else vr, len(value), value, 0, seed.implicit,
                                     seed.little)
        elif op == "vr" and tag in ds:
            raw = ds.get_item(tag)
            value = raw.value if isinstance(raw, RawDataElement) else b""
            ds[tag] = RawDataElement(tag, draw(st.sampled_from(VRS)), len(value or b""), value, 0, seed.implicit,
                                     seed.little)
        elif op == "nest":
            item = Dataset()
            item.PatientID = draw(st.sampled_from(("", "X\\Y", "1" * 70)))
            item.StudyInstanceUID = draw(st.sampled_from(("", "1.2.3", "not-a-uid")))
            inner = item
            for _ in range(draw(st.sampled_from((0, 1, 30)))):
                nested = Dataset()
                nested.ContentSequence = [inner]
                inner = nested
            keyword = pydicom.datadict.keyword_for_tag(tag) if vr == "SQ" else "CurrentRequestedProcedureEvidenceSequence"
            if keyword in ds:  # a raw element an earlier edit made undecodable: replaced, not read
                del ds[keyword]
            setattr(ds, keyword, draw(st.sampled_from(([], [item], [inner], [item] * 3))))
        elif op == "transfer_syntax":
            meta.TransferSyntaxUID = draw(st.sampled_from(syntaxes))
    try:
        return meta, encode(ds, seed.implicit, seed.little)
    except Exception:  # a combination pydicom refuses to write: the seed with its meta made to lie
        return meta, seed.dataset


@st.composite
def byte_mutations(draw) -> tuple[FileMetaDataset, bytes]:
    seed = draw(st.sampled_from(SEEDS))
    return copy.deepcopy(seed.meta), draw(mutated_bytes([seed.dataset], DICOM_TOKENS))


malformed = st.one_of(element_mutations(), byte_mutations())


# --- RAD-68: the KOS checks -------------------------------------------------------------------------


def entry_for(seed: Seed) -> m.DocumentEntry:
    """The DocumentEntry a faithful Imaging Document Source would send with the seed KOS."""
    ds = pydicom.filereader.read_dataset(io.BytesIO(seed.dataset), seed.implicit, seed.little)
    pid = str(ds.get("PatientID", ""))
    return m.DocumentEntry(
        entry_uuid="Document01",
        mime_type=DICOM_MIME_TYPE,
        unique_id=str(ds.get("SOPInstanceUID", "")),
        patient_id=f"{pid}^^^&{seeds.AUTHORITY}&ISO",
        source_patient_id=f"{pid}^^^&{seeds.AUTHORITY}&ISO",
        format_code=m.Code(KOS_SOP_CLASS, "1.2.840.10008.2.6.1", "Key Object Selection"),
        reference_ids=[f"{ds.get('StudyInstanceUID', '')}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
                       f"{ds.get('AccessionNumber', '')}^^^^urn:ihe:iti:xds:2013:accession"],
    )


ENTRIES = {id(s): entry_for(s) for s in KOS_SEEDS}


def as_file(meta: FileMetaDataset, dataset: bytes) -> bytes:
    """A PS3.10 file as a sender may have written it: the meta information as it is, however wrong."""
    out = DicomBytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=False)
    return out.getvalue() + dataset


@fuzz(300)
@given(case=st.one_of(element_mutations(DOCUMENT_SYNTAXES), byte_mutations()), kos=st.sampled_from(KOS_SEEDS))
def test_kos_check_gives_coded_errors_for_any_document(case, kos):
    meta, dataset = case
    errors = check_kos(ENTRIES[id(kos)], Attachment(data=as_file(meta, dataset)))
    event(f"{len(errors)} errors")
    assert all(e.code == ErrorCode.XDS_REPOSITORY_METADATA_ERROR.value and e.location == "Document01" for e in errors)


# --- C-STORE ----------------------------------------------------------------------------------------


class _Requestor:
    ae_title = "FUZZSCU"


class _Assoc:
    requestor = _Requestor()


class StoreEvent:
    """What pynetdicom hands EVT_C_STORE handlers, for the parts the node's handler reads."""

    def __init__(self, meta: FileMetaDataset, dataset: bytes) -> None:
        self.assoc = _Assoc()
        self.file_meta = meta
        self._dataset = dataset

    def encoded_dataset(self, include_meta: bool = True) -> bytes:
        assert not include_meta
        return self._dataset


@pytest.fixture(scope="module")
def sentinel_instance(live_node):  # noqa: ANN001, ANN201
    """An image stored over C-STORE before fuzzing, with UIDs no mutation produces."""
    path = next(p for p in FILES if p not in KOS)
    ds = pydicom.dcmread(path)
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ae = AE(ae_title="FUZZSCU")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", live_node.dicom_port, ae_title=live_node.node.config.imaging.ae_title)
    assert assoc.is_established
    try:
        assert int(assoc.send_c_store(ds).Status) == SUCCESS
    finally:
        assoc.release()
    store = live_node.imaging.instances
    instance = store.get_many([ds.SOPInstanceUID])[ds.SOPInstanceUID]
    with store.open(instance) as f:
        digest = hashlib.sha1(f.read()).hexdigest()
    yield ds.SOPInstanceUID, digest
    instance = store.get_many([ds.SOPInstanceUID])[ds.SOPInstanceUID]
    with store.open(instance) as f:
        assert hashlib.sha1(f.read()).hexdigest() == digest == instance.sha1


@fuzz(250)
@given(case=malformed)
def test_c_store_handler_stores_or_refuses_with_cannot_understand(intact, sentinel_instance, caplog, case):
    scp = intact.imaging.scp
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = scp._handle_store(StoreEvent(*case))
    event(f"status {status:04X}")
    assert status in (SUCCESS, CANNOT_UNDERSTAND), f"status {status:04X}"
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, PHI)


@pytest.fixture
def chunked_c_store():  # noqa: ANN201
    """pynetdicom sends a file's data set as it is on disk (no decoding, no re-encoding)."""
    before = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    yield
    _config.STORE_SEND_CHUNKED_DATASET = before


@fuzz(40)
@given(case=malformed)
def test_live_c_store_of_malformed_data_sets(intact, sentinel_instance, chunked_c_store, tmp_path_factory, caplog,
                                            case):
    meta, dataset = case
    if not (meta.get("MediaStorageSOPClassUID") and meta.get("MediaStorageSOPInstanceUID")):
        return
    path = tmp_path_factory.mktemp("cstore") / "instance.dcm"
    path.write_bytes(part10(meta, dataset))
    ts = str(meta.get("TransferSyntaxUID", "") or "1.2.840.10008.1.2.1")
    received = getattr(intact.imaging.scp, "_received", {})  # associations not audited yet
    pending = len(received)
    ae = AE(ae_title="FUZZSCU")
    ae.add_requested_context(str(meta.MediaStorageSOPClassUID), ts)
    assoc = ae.associate("127.0.0.1", intact.dicom_port, ae_title=intact.node.config.imaging.ae_title)
    if not assoc.is_established:  # a transfer syntax the listener does not accept: refused at association
        event("association rejected")
        return
    caplog.clear()
    try:
        with caplog.at_level(logging.INFO):
            status = assoc.send_c_store(path)
        code = int(status.Status) if "Status" in status else None
    finally:
        assoc.release()
    # the listener audits an association when its connection closes: wait for that before judging
    deadline = time.monotonic() + 5
    while len(received) > pending and time.monotonic() < deadline:
        time.sleep(0.01)
    event(f"status {code:04X}" if code is not None else "no status")
    assert code in (SUCCESS, CANNOT_UNDERSTAND), code
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, PHI)
