"""Imaging Document Source benchmark (issue 5).

A CT study (default 500 instances: 2 localizers and an axial series, full CT headers, 512x512
16-bit pixels) is sent with dcmtk's storescu, as a PACS would (no TCP_NODELAY, one association),
to the node's DICOM listener and to Orthanc (Debian package orthanc, started here on loopback with
its own configuration and storage), alternating which goes first. Measured per run:

* C-STORE ingest, instances/s, ours and Orthanc's (storescu's wall time for the whole study);
* last instance to manifest registered: from storescu's exit (the last C-STORE answered) until an
  ITI-18 FindDocuments by the patient finds the KOS (RAD-68 after ``--quiet-seconds``);
* RAD-69 Retrieve Imaging Document Set of the whole study (explicit VR little endian, as stored),
  MB/s of the MTOM response read by an HTTP client on loopback (best of 3).

The node is a real `xds serve` process (conf/hdirs.toml, temporary data directory, SQLite);
the patient is admitted over ITI-8 first.
Usage:  .venv/bin/python bench/bench_imaging.py [--instances 500] [--rows 512] [--runs 3] [--quiet-seconds 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

from tests.imaging.orthanc import start_orthanc  # noqa: E402
from tests.imaging.wire import (  # noqa: E402
    SOAP_CT,
    Series,
    document_unique_ids,
    find_documents,
    read_retrieve,
    retrieve_document_set,
    retrieve_imaging,
)
from tests.live import free_port, wait_http, write_config  # noqa: E402

HN_AUTHORITY = "2.16.840.1.113883.4.59"  # conf/hdirs.toml's affinity domain (Ontario health number)
HOSPITAL = "1.3.6.1.4.1.21367.1800.13.20.1000"
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
MB = 1_000_000


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def ct_instance(study: dict, series: dict, number: int, rows: int, pixels: bytes) -> Dataset:
    """One CT Image (PS3.3 A.3) with the modules a scanner fills in."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", series["image_type"]]
    ds.InstanceCreationDate, ds.InstanceCreationTime = study["date"], "101612"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = study["date"]
    ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime, ds.ContentTime = "101530", "101544", "101601", "101612"
    ds.AccessionNumber = study["accession"]
    issuer = Dataset()
    issuer.LocalNamespaceEntityID, issuer.UniversalEntityID, issuer.UniversalEntityIDType = "TGH", HOSPITAL, "ISO"
    ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    ds.Modality = "CT"
    ds.Manufacturer = "ACME Medical"
    ds.InstitutionName = "Toronto General Hospital"
    ds.InstitutionAddress = "200 Elizabeth St, Toronto ON"
    ds.ReferringPhysicianName = "Welby^Marcus^^Dr"
    ds.StationName = "TGHCT01"
    ds.StudyDescription = "CT CHEST ABDOMEN PELVIS WITH CONTRAST"
    ds.ProcedureCodeSequence = Sequence([_code("CTCAPC", "99TGH", "CT Chest Abdomen Pelvis with contrast")])
    ds.SeriesDescription = series["description"]
    ds.ManufacturerModelName = "Scanner 128"
    ds.PatientName = study["name"]
    ds.PatientID = study["mrn"]
    ds.IssuerOfPatientID = HOSPITAL
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID = study["hn"], HN_AUTHORITY, "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.PatientBirthDate, ds.PatientSex, ds.PatientAge, ds.PatientWeight = "19610412", "M", "063Y", "82"
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = "73412"
    ds.SoftwareVersions = "VA40"
    ds.ProtocolName = "Chest-Abdomen-Pelvis"
    ds.ReconstructionDiameter = "380"
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = "1085.6", "595"
    ds.GantryDetectorTilt, ds.TableHeight = "0", "155"
    ds.RotationDirection = "CW"
    ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure = "500", "215", "107"
    ds.FilterType, ds.GeneratorPower, ds.FocalSpots = "FLAT", "26", "1.2"
    ds.ConvolutionKernel = "Br40d"
    ds.PatientPosition = "FFS"
    ds.SpiralPitchFactor = 0.8
    ds.CTDIvol = 9.12
    ds.StudyInstanceUID = study["uid"]
    ds.SeriesInstanceUID = series["uid"]
    ds.StudyID = study["accession"][-8:]
    ds.SeriesNumber = series["number"]
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = number
    z = -120.0 - number * 1.0
    ds.ImagePositionPatient = [-190.0, -190.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = study["frame_of_reference"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = z
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = rows
    ds.PixelSpacing = [round(380 / rows, 6)] * 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    shift = (number * 4099) % len(pixels)
    ds.PixelData = pixels[shift:] + pixels[:shift]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def make_ct_study(directory: Path, run: int, instances: int, rows: int) -> tuple[dict, list[Path]]:
    study = {
        "uid": generate_uid(), "frame_of_reference": generate_uid(), "date": datetime.now(UTC).strftime("%Y%m%d"),
        "accession": f"TGH{run:04d}{os.getpid() % 10000:04d}", "mrn": f"MRN9{run:03d}", "hn": f"97000{run:05d}",
        "name": f"Bench^Patient{run}",
    }
    pixels = os.urandom(rows * rows * 2)
    series = [
        {"uid": generate_uid(), "number": 1, "description": "Topogram 0.6 T20f", "image_type": "LOCALIZER", "count": 2},
        {"uid": generate_uid(), "number": 2, "description": "Thorax-Abdomen 1.0 Br40 3", "image_type": "AXIAL",
         "count": instances - 2},
    ]
    directory.mkdir(parents=True)
    files = []
    for s in series:
        for n in range(1, s["count"] + 1):
            ds = ct_instance(study, s, n, rows, pixels)
            path = directory / f"{len(files):04d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return study, files


def storescu(port: int, called: str, files: list[Path]) -> float:
    start = time.perf_counter()
    r = subprocess.run(["storescu", "--required", "-aet", "PACS_TGH", "-aec", called, "127.0.0.1", str(port),
                        *map(str, files)], capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        raise RuntimeError(f"storescu to {called}: {r.stderr[-2000:]}")
    return elapsed


def admit(mllp_port: int, study: dict) -> None:
    """ITI-8 ADT^A01 with the health number and the hospital MRN."""
    segments = [
        f"MSH|^~\\&|ADT|TGH|XDSREG|HDIRS|20240115100000||ADT^A01^ADT_A01|{study['mrn']}|P|2.5",
        "EVN|A01|20240115100000",
        f"PID|||{study['hn']}^^^&{HN_AUTHORITY}&ISO~{study['mrn']}^^^&{HOSPITAL}&ISO||Bench^Patient||19610412|M",
        "PV1||O",
    ]
    with socket.create_connection(("127.0.0.1", mllp_port), timeout=10) as s:
        s.sendall(b"\x0b" + "\r".join(segments).encode() + b"\r\x1c\r")
        if b"MSA|AA" not in s.recv(4096):
            raise RuntimeError("ITI-8 not accepted")


def start_node(tmp: Path, quiet_seconds: int) -> tuple[subprocess.Popen, dict]:
    tmp.mkdir(parents=True)
    cfg_path = write_config("conf/hdirs.toml", tmp / "node.toml", {
        "log_level": "WARNING",
        "http": {"port": free_port()},
        "mllp": {"port": free_port()},
        "imaging": {"port": free_port(), "study_quiet_seconds": quiet_seconds},
    })
    cfg = tomllib.loads(cfg_path.read_text())
    log = open(tmp / "node.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "xds.cli", "serve", "--config", str(cfg_path), "--data-dir",
                             str(tmp / "data")], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{cfg['http']['port']}/health", proc, timeout=60)
    return proc, cfg


def manifest_latency(base: str, cfg: dict, study: dict, instances: int, client: httpx.Client,
                     timeout: float = 120) -> float:
    """Seconds from now until ITI-18 FindDocuments by the patient finds a manifest referencing all
    ``instances`` (one published during a pause of the ingest, then replaced, does not count)."""
    import io

    import pydicom

    start = time.perf_counter()
    query = find_documents(f"{study['hn']}^^^&{HN_AUTHORITY}&ISO")
    seen: set[str] = set()
    while time.perf_counter() - start < timeout:
        r = client.post(base + "/xds/registry", content=query, headers={"content-type": SOAP_CT})
        for uid in set(document_unique_ids(r.content)) - seen:
            found = time.perf_counter() - start
            seen.add(uid)
            iti43 = retrieve_document_set(cfg["repository"]["repository_unique_id"], uid)
            answer = client.post(base + "/xds/repository", content=iti43, headers={"content-type": SOAP_CT})
            kos = pydicom.dcmread(io.BytesIO(read_retrieve(answer.headers["content-type"], answer.content).documents[uid]))
            referenced = sum(len(se.ReferencedSOPSequence) for st in kos.CurrentRequestedProcedureEvidenceSequence
                             for se in st.ReferencedSeriesSequence)
            if referenced == instances:
                return found
        time.sleep(0.02)
    raise RuntimeError("no manifest of the whole study was registered in time")


def rad69(url: str, repository_unique_id: str, study: dict, files: list[Path], client: httpx.Client) -> tuple[float, int]:
    """Best MB/s of three whole-study RAD-69 retrieves; checks the last answer holds every instance."""
    import pydicom

    series: dict[str, list[str]] = {}
    for f in files:
        h = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "SOPInstanceUID"])
        series.setdefault(h.SeriesInstanceUID, []).append(h.SOPInstanceUID)
    body = retrieve_imaging(repository_unique_id, {study["uid"]: [Series(s, i) for s, i in series.items()]}, [EXPLICIT])
    best, size = 0.0, 0
    for _ in range(3):
        chunks = []
        start = time.perf_counter()
        with client.stream("POST", url, content=body, headers={"content-type": SOAP_CT}) as r:
            for chunk in r.iter_raw(1 << 20):
                chunks.append(chunk)
        elapsed = time.perf_counter() - start
        size = sum(map(len, chunks))
        best = max(best, size / MB / elapsed)
    answer = read_retrieve(r.headers["content-type"], b"".join(chunks))
    if answer.status != "Success" or len(answer.documents) != len(files):
        raise RuntimeError(f"RAD-69: {answer.status}, {len(answer.documents)} of {len(files)} documents")
    return best, size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=500)
    ap.add_argument("--rows", type=int, default=512, help="pixel matrix (rows = columns, 16 bits)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quiet-seconds", type=int, default=1)
    args = ap.parse_args()
    for binary in ("storescu", "Orthanc"):
        if not (shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists()):
            sys.exit(f"{binary} is missing (apt-get install dcmtk orthanc)")
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-imaging-") as d, httpx.Client(timeout=300) as client:
        tmp = Path(d)
        proc, cfg = start_node(tmp / "node", args.quiet_seconds)
        pacs = start_orthanc(tmp / "orthanc", {})
        base = f"http://127.0.0.1:{cfg['http']['port']}"
        try:
            for run in range(args.runs):
                study, files = make_ct_study(tmp / f"study{run}", run, args.instances, args.rows)
                admit(cfg["mllp"]["port"], study)
                ours_first = run % 2 == 0
                if not ours_first:
                    orthanc_s = storescu(pacs.dicom_port, pacs.aet, files)
                ours_s = storescu(cfg["imaging"]["port"], cfg["imaging"]["ae_title"], files)
                latency = manifest_latency(base, cfg, study, args.instances, client)
                if ours_first:
                    orthanc_s = storescu(pacs.dicom_port, pacs.aet, files)
                held = httpx.get(f"{pacs.url}/statistics", timeout=30).json()["CountInstances"]
                if held != args.instances * (run + 1):
                    raise RuntimeError(f"Orthanc holds {held} instances, {args.instances * (run + 1)} were sent")
                mb_s, size = rad69(base + "/xds/imaging", cfg["imaging"]["repository_unique_id"], study, files, client)
                rows.append((args.instances / ours_s, args.instances / orthanc_s, latency, mb_s, size))
                print(f"run {run + 1}: ours {rows[-1][0]:.1f}/s, Orthanc {rows[-1][1]:.1f}/s, manifest after "
                      f"{latency:.2f} s, RAD-69 {mb_s:.0f} MB/s ({size / MB:.0f} MB)", file=sys.stderr)
                shutil.rmtree(tmp / f"study{run}")
        finally:
            pacs.stop()
            proc.terminate()
            proc.wait()
    load_after = os.getloadavg()

    size_mb = rows[0][4] / MB
    print(f"\nCT study of {args.instances} instances ({args.rows}x{args.rows}x16 bit, ~{size_mb:.0f} MB as RAD-69 "
          f"returns it), storescu (dcmtk) on loopback, one association; {os.cpu_count()} cores, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after; {args.runs} runs, "
          f"study_quiet_seconds = {args.quiet_seconds}\n")
    print("| run | ours (instances/s) | Orthanc (instances/s) | ours / Orthanc | last instance -> manifest registered | RAD-69 (MB/s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, (ours, orthanc, latency, mb_s, _) in enumerate(rows, 1):
        print(f"| {i} | {ours:.1f} | {orthanc:.1f} | {ours / orthanc:.0%} | {latency:.2f} s | {mb_s:.0f} |")
    med = [statistics.median(r[k] for r in rows) for k in range(4)]
    print(f"| median | {med[0]:.1f} | {med[1]:.1f} | {med[0] / med[1]:.0%} | {med[2]:.2f} s | {med[3]:.0f} |")


if __name__ == "__main__":
    main()
