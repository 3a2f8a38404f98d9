"""The whole pipeline through ``once``: inbox to outbox against the simulator."""

from __future__ import annotations

import json
import unicodedata

from pypdf import PdfReader

from syncd.errors import ExitCode
from syncd.simulator import Simulator, SimulatorOptions
from tests.harness import API_KEY, Tree, make_settings, run_once

NAMES = [
    "plain.pdf",
    "with spaces (final).pdf",
    "finance/2026/invoice #14.pdf",
    unicodedata.normalize("NFC", "Übersicht.pdf"),
    unicodedata.normalize("NFD", "Réunion.pdf"),
    "UPPER.PDF",
]


def _records_per_name(simulator: Simulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in simulator.files():
        counts[record["name"]] = counts.get(record["name"], 0) + 1
    return counts


def test_every_pdf_lands_in_the_outbox_once_and_the_original_in_the_archive(
    simulator: Simulator, tree: Tree
) -> None:
    for index, name in enumerate(NAMES):
        tree.drop(name, pages=index + 1)
    settings = make_settings(simulator, tree)

    code = run_once(settings)

    assert code == ExitCode.OK
    expected = sorted(unicodedata.normalize("NFC", name) for name in NAMES)
    outbox = [unicodedata.normalize("NFC", n) for n in tree.listing(tree.outbox)]
    archive = [unicodedata.normalize("NFC", n) for n in tree.listing(tree.archive)]
    assert sorted(outbox) == expected
    assert sorted(archive) == expected
    assert tree.listing(tree.inbox) == []
    assert simulator.creates() == len(NAMES)
    assert simulator.leaks() == 0
    # Each step ran once: no create asked twice, no bytes sent twice.
    requests = simulator.requests()
    creates = [r for r in requests if r["method"] == "POST" and r["origin"] == "api"]
    uploads = [r for r in requests if r["method"] == "PUT"]
    assert len(creates) == len(NAMES)
    assert not any(r["replay"] for r in creates)
    assert len(uploads) == len(NAMES)
    assert all(count == 1 for count in _records_per_name(simulator).values())


def test_outbox_files_are_the_services_results_byte_for_byte(
    simulator: Simulator, tree: Tree
) -> None:
    tree.drop("a.pdf", pages=3)

    assert run_once(make_settings(simulator, tree)) == ExitCode.OK

    (record,) = simulator.files()
    delivered = (tree.outbox / "a.pdf").read_bytes()
    assert delivered == simulator.result_bytes(record["id"])
    assert delivered != (tree.archive / "a.pdf").read_bytes()
    assert len(PdfReader(tree.outbox / "a.pdf").pages) == 3


def test_without_an_archive_the_original_is_deleted(
    simulator: Simulator, tree: Tree
) -> None:
    tree.drop("a.pdf")
    settings = make_settings(simulator, tree, folders={"archive": None})

    assert run_once(settings) == ExitCode.OK

    assert tree.listing(tree.outbox) == ["a.pdf"]
    assert tree.listing(tree.inbox) == []
    assert not tree.archive.exists()


def test_a_broken_pdf_fails_with_a_reason_and_exit_1_while_others_deliver(
    simulator: Simulator, tree: Tree
) -> None:
    tree.drop("good.pdf")
    tree.drop("sub/bad.pdf", data=b"%PDF-1.7\nnot really a PDF\n%%EOF\n")

    code = run_once(make_settings(simulator, tree))

    assert code == ExitCode.SOME_FAILED
    assert tree.listing(tree.outbox) == ["good.pdf"]
    assert tree.listing(tree.failed) == ["sub/bad.pdf", "sub/bad.pdf.error.json"]
    report = json.loads((tree.failed / "sub/bad.pdf.error.json").read_text())
    assert report["reason"] == "corrupt"
    assert "damaged" in report["message"]
    assert report["file"] == "sub/bad.pdf"
    assert simulator.creates() == 1


def test_a_name_taken_in_the_outbox_gets_a_number(
    simulator: Simulator, tree: Tree
) -> None:
    tree.outbox.mkdir()
    (tree.outbox / "a.pdf").write_bytes(b"someone else's file")
    tree.drop("a.pdf")

    assert run_once(make_settings(simulator, tree)) == ExitCode.OK

    assert tree.listing(tree.outbox) == ["a (2).pdf", "a.pdf"]
    assert (tree.outbox / "a.pdf").read_bytes() == b"someone else's file"


def test_overwrite_replaces_a_taken_outbox_name(
    simulator: Simulator, tree: Tree
) -> None:
    tree.outbox.mkdir()
    (tree.outbox / "a.pdf").write_bytes(b"old result")
    tree.drop("a.pdf")
    settings = make_settings(simulator, tree, folders={"on_conflict": "overwrite"})

    assert run_once(settings) == ExitCode.OK

    assert tree.listing(tree.outbox) == ["a.pdf"]
    assert (tree.outbox / "a.pdf").read_bytes().startswith(b"%PDF-")


def test_once_times_out_with_75_and_the_next_run_finishes(
    tree: Tree,
) -> None:
    tree.drop("slow.pdf")
    options = SimulatorOptions(api_key=API_KEY, processing_seconds=3.0)
    with Simulator(options) as sim:
        settings = make_settings(sim, tree)

        assert run_once(settings, timeout=1.0) == ExitCode.TEMPFAIL
        assert run_once(settings, timeout=30) == ExitCode.OK

        assert tree.listing(tree.outbox) == ["slow.pdf"]
        assert sim.creates() == 1
