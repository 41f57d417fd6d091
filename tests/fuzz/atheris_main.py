"""Long, coverage-guided runs of the fuzz suite's properties with atheris (libFuzzer).

    .venv/bin/pip install atheris
    .venv/bin/python -m tests.fuzz.atheris_main TARGET [libFuzzer options] [CORPUS_DIR ...]
    .venv/bin/python -m tests.fuzz.atheris_main hl7 -max_total_time=3600 -jobs=2 var/fuzz/hl7

A target is one of the Hypothesis properties of ``tests/fuzz`` that need no running node. atheris
feeds it bytes through Hypothesis' ``fuzz_one_input``, so the same generators (mutations of the
corpus seeds) and the same assertions apply, now steered by coverage of the ``xds`` package. A
failing input stops the run: Hypothesis prints the falsifying example, libFuzzer writes the input
(``crash-*``), which ``-runs=1 crash-...`` replays.
"""

from __future__ import annotations

import importlib
import sys

TARGETS = {
    "mtom": "tests.fuzz.test_mtom_parser:test_parse_outcome_does_not_depend_on_chunking",
    "mtom-headers": "tests.fuzz.test_mtom_parser:test_any_body_under_any_multipart_header",
    "mtom-round-trip": "tests.fuzz.test_mtom_parser:test_what_parses_survives_the_writers_round_trip",
    "ebrim": "tests.fuzz.test_ebrim:test_mutated_submissions_are_parsed_and_validated_into_coded_errors",
    "ebrim-root": "tests.fuzz.test_ebrim:test_any_root_element_is_a_coded_error_not_an_exception",
    "query-values": "tests.fuzz.test_stored_query:test_value_syntax_parser_returns_values_or_value_error",
    "hl7": "tests.fuzz.test_hl7:test_parser_gives_a_readable_message_or_a_coded_error",
    "kos": "tests.fuzz.test_dicom:test_kos_check_gives_coded_errors_for_any_document",
    "xua": "tests.fuzz.test_xua:test_a_mutated_assertion_is_refused_or_names_the_signed_person",
}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(__doc__)
        print("targets: " + ", ".join(sorted(TARGETS)))
        return 2
    import atheris

    target = argv.pop(1)
    module_name, name = TARGETS[target].split(":")
    with atheris.instrument_imports(include=["xds"]):
        module = importlib.import_module(module_name)
    test = getattr(module, name)
    # Hypothesis reads a few bytes per choice it makes: inputs of libFuzzer's usual lengths are too short
    for option in ("-max_len=65536", "-len_control=0"):
        if not any(a.startswith(option.split("=")[0] + "=") for a in argv):
            argv.append(option)
    atheris.Setup(argv, test.hypothesis.fuzz_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
