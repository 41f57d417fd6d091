"""The NIST XDS Toolkit tests replayed by ../shared/conformance/run against `xds serve --config
conf/nist.toml` (the harness target ../shared/conformance/targets/hdirs.toml matches that node).
Each suite runs against a fresh node: every step the harness automates must pass."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import tomllib

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE

from tests.live import ROOT, SHARED, live_node

RUN = SHARED / "conformance" / "run"

# Steps whose expectation contradicts the test kit itself (reported in the project's notes).
HARNESS_ERRATA = {
    "12029/retrieve/retrieve": (
        "12029/submit sends submit/readme.txt (44 bytes) as Document01, but the retrieve step's "
        "<ReferenceDocument> is submit/my_document.pdf (14,226 bytes); the node returns the bytes submitted"
    ),
    "12313/retrieve_two/retrieve_two": (
        "12318/init submits Document02 as summary.xml (text/xml), but 12313 expects text/plain and compares "
        "with ../12318/my_document2.txt; the gateway returns the document submitted"
    ),
}
# Steps whose outcome depends on when the harness's clock ticks, not on the node.
TIMING_ERRATA = {
    "11899/in_updatetime/in_updatetime": (
        "the query's $XDSFolderLastUpdateTimeTo is the harness's $now$, to the second; the folders were "
        "registered a few ms earlier by the data loader 12346, and when that was within the same second "
        "their lastUpdateTime equals $now$, which the exclusive upper bound of a time range excludes "
        "(ITI TF-2a 3.18.4.1.2.3.4); tests/registry/test_stored_query_find.py checks the bounds"
    ),
}
TARGET = SHARED / "conformance" / "targets" / "hdirs.toml"


@pytest.mark.slow
@pytest.mark.parametrize("suite", ["registry", "query", "repository", "xdsi", "xca"])
def test_nist_conformance_suite(suite, tmp_path):
    with live_node(tmp_path, base="conf/nist.toml", fixed_ports=True):
        r = subprocess.run(
            [str(RUN), "--target", str(TARGET), "--suite", suite, "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=900,
        )
    failures = [
        line for line in r.stdout.splitlines()
        if line.startswith("FAIL") and line.split()[1].rstrip(":") not in HARNESS_ERRATA | TIMING_ERRATA
    ]
    summary = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else [r.stderr[-2000:]]
    counts = re.fullmatch(r"(\d+) passed, (\d+) failed, (\d+) skipped", summary[-1].strip()) if summary else None
    assert counts and int(counts.group(1)) > 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert not failures, "\n".join(failures[:40] + summary)


# The RAD-69 answer's wsa:Action: the harness expects urn:ihe:rad:2009:RetrieveImagingDocumentSetResponse;
# the XDS-I.b WSDL (XDS-I.b_ImagingDocumentSource.wsdl, output of RetrieveImagingDocumentSet) and the
# NIST toolkit itself (TransactionType.RET_IMG_DOC_SET) give urn:ihe:iti:2007:RetrieveDocumentSetResponse,
# which the node sends.
RAD69_ACTION_ERRATUM = ("response wsa:Action is urn:ihe:iti:2007:RetrieveDocumentSetResponse, "
                        "expected urn:ihe:rad:2009:RetrieveImagingDocumentSetResponse")
NIST_KOS = [SHARED / "corpus" / "nist-testkit" / t / "ValidateKOS" / "kos-evaluate.dcm"
            for t in ("ids_2018-4801a", "ids_2018-4801b", "ids_2018-4801c")]


def kos_instances(kos: Dataset) -> list[Dataset]:
    """Small images with the patient and the study / series / SOP instance UIDs ``kos`` references
    (the NIST image sets themselves are not in the corpus)."""
    out = []
    for study in kos.CurrentRequestedProcedureEvidenceSequence:
        for series in study.ReferencedSeriesSequence:
            for number, ref in enumerate(series.ReferencedSOPSequence, 1):
                ds = Dataset()
                ds.SOPClassUID, ds.SOPInstanceUID = ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID
                ds.StudyInstanceUID, ds.SeriesInstanceUID = study.StudyInstanceUID, series.SeriesInstanceUID
                for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
                    setattr(ds, keyword, kos.get(keyword, ""))
                ds.Modality, ds.InstanceNumber = "OT", number
                ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 4, 4
                ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
                ds.PixelData = struct.pack("<16H", *range(16))
                ds.file_meta = FileMetaDataset()
                ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
                out.append(ds)
    return out


@pytest.mark.slow
def test_nist_xdsi_rad69_steps_pass_with_the_studies_loaded(tmp_path):
    """[suite.xdsi] images_preloaded: the RAD-69 tests 4803a/b/c and 4820 against instances carrying
    the UIDs of the NIST KOS manifests, C-STOREd to the node first."""
    target = tmp_path / "target.toml"
    target.write_text(TARGET.read_text().replace("images_preloaded = false", "images_preloaded = true"))
    with open(ROOT / "conf" / "nist.toml", "rb") as f:
        imaging = tomllib.load(f)["imaging"]
    instances = [ds for kos in NIST_KOS for ds in kos_instances(pydicom.dcmread(kos))]
    with live_node(tmp_path, base="conf/nist.toml", fixed_ports=True):
        ae = AE(ae_title="NISTIMAGES")
        for sop_class in {ds.SOPClassUID for ds in instances}:
            ae.add_requested_context(sop_class, ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", imaging["port"], ae_title=imaging["ae_title"])
        assert assoc.is_established
        assert [assoc.send_c_store(ds).Status for ds in instances] == [0] * len(instances)
        assoc.release()
        r = subprocess.run(
            [str(RUN), "--target", str(target), "--suite", "xdsi", "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=900,
        )
    steps = json.loads((tmp_path / "out" / "report.json").read_text())["steps"]
    rad69 = [s for s in steps if s["test"] in ("ids_2018-4803a", "ids_2018-4803b", "ids_2018-4803c", "ids_2018-4820")]
    assert len(rad69) == 13 and not [s for s in rad69 if s["outcome"] == "SKIP"], r.stdout[-3000:]
    failed = [(s["name"], s["failures"]) for s in steps
              if s["outcome"] == "FAIL" and s["failures"] != [RAD69_ACTION_ERRATUM]]
    assert not failed, failed
