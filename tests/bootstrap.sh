#!/usr/bin/env bash
# Installs and starts what the test suite talks to, idempotently: the PostgreSQL server of
# this machine, and the third-party clients used as interop peers. Called by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres): start it if it is not running.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! command -v pg_isready >/dev/null 2>&1 || ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "bootstrap: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will fail" >&2
fi

# node-soap (npm package "soap"): a WSDL client from another ecosystem for the interop tests.
if [ -f tests/interop/node/package.json ] && command -v npm >/dev/null 2>&1; then
  if [ ! -d tests/interop/node/node_modules/soap ]; then
    (cd tests/interop/node && npm install --silent --no-audit --no-fund >/dev/null)
  fi
fi

# DICOM peers of the imaging tests: dcmtk's storescu (a PACS sending a study), dicom3tools' dciodvfy
# (the reference IOD validator for our KOS manifests) and Orthanc (a source PACS).
if ! command -v storescu >/dev/null 2>&1 || ! command -v dciodvfy >/dev/null 2>&1 || ! command -v Orthanc >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk dicom3tools orthanc >/dev/null \
      || echo "bootstrap: could not install dcmtk, dicom3tools and orthanc; the imaging tests will fail" >&2
  fi
fi
