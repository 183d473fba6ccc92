"""Adversarial inputs through the real command line: no traceback, no silent loss, no write through a source.

The cases and their expected answers are in tests/data/adversarial/cases.yml;
each runs from a fresh copy of that folder, with both validate engines where
it applies, and every input file must be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from toolkit.cli import _input_failure, main
from toolkit.export import FORMULA_PREFIXES, atomic_path
from toolkit.ingest import IngestError, _read_only_sqlite
from toolkit.reports import _remove_abandoned_builds

CORPUS = Path(__file__).parent / "data" / "adversarial"
CASES = yaml.safe_load((CORPUS / "cases.yml").read_text(encoding="utf-8"))


def _runs() -> list:
    runs = []
    for case in CASES:
        for engine in case.get("engines", [None]):
            runs.append(pytest.param(case, engine, id=case["case"] + (f"-{engine}" if engine else "")))
    return runs


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the corpus with the shop's orders also as a SQLite and a DuckDB database; the working directory."""
    folder = tmp_path / "adversarial"
    shutil.copytree(CORPUS, folder)
    orders = pd.read_csv(folder / "shop" / "orders.csv")
    with sqlite3.connect(folder / "shop" / "shop.db") as con:
        orders.to_sql("orders", con, index=False)
    with duckdb.connect(str(folder / "shop" / "shop.duckdb")) as con:
        con.register("source", orders)
        con.sql("CREATE TABLE orders AS SELECT * FROM source")
    monkeypatch.chdir(folder)
    return folder


def _digests(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse refuses a value before anything runs
        return exit_.code


@pytest.mark.parametrize(("case", "engine"), _runs())
def test_adversarial_case_gets_its_answer_and_leaves_the_inputs_alone(case, engine, corpus, capsys):
    inputs = _digests(corpus)
    argv = [str(a) for a in case["args"]] + (["--engine", engine] if engine else [])

    code = _run(argv)

    out = capsys.readouterr()
    said = out.out + out.err
    assert code == case["exit"], said
    assert case["message"] in said
    assert "Traceback" not in said
    assert not [text for text in case.get("absent", []) if text in said], said
    # one line says what is wrong (argparse puts its usage above it)
    assert len([line for line in out.err.splitlines() if "error:" in line]) == (case["exit"] != 0), out.err
    after = _digests(corpus)
    assert {name: after.get(name) for name in inputs} == inputs, "an input file changed"
    if "csv" in case:
        with open(corpus / case["csv"], newline="", encoding="utf-8") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        assert cells, "the CSV is empty"
        assert not [cell for cell in cells if cell.startswith(FORMULA_PREFIXES)]


def test_failure_of_the_machine_leaves_its_traceback_in_the_log_it_names(corpus, capsys):
    code = _run(["validate", "shop", "--rejects", "configs/alias_bomb.yml/rejects.csv"])

    err = capsys.readouterr().err
    assert code == 2
    assert "journeycast validate: error: FileExistsError:" in err and "alias_bomb.yml" in err
    log = Path(err.rsplit("traceback in ", 1)[1].rstrip(")\n"))
    assert "Traceback (most recent call last)" in log.read_text(encoding="utf-8")


def test_a_bug_is_told_from_a_failure_of_the_input():
    assert _input_failure(FileNotFoundError("orders.csv"))
    assert _input_failure(LookupError("unknown encoding: utf-9"))
    assert _input_failure(duckdb.IOException("disk full"))
    assert not _input_failure(KeyError("amount"))
    assert not _input_failure(TypeError("unsupported operand"))


def test_sqlite_is_opened_read_only_whatever_the_url_asks(corpus):
    before = _digests(corpus)
    url, options = _read_only_sqlite(sa.make_url("sqlite:///file:shop.db?mode=rw&uri=true"), corpus / "shop")
    engine = sa.create_engine(url, **options)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.OperationalError, match="readonly|read-only"):
            conn.execute(sa.text("DELETE FROM orders"))
            conn.commit()
    finally:
        engine.dispose()
    assert _digests(corpus) == before


def test_a_missing_sqlite_file_is_not_created(corpus):
    url, options = _read_only_sqlite(sa.make_url("sqlite:///nowhere.db"), corpus / "shop")
    engine = sa.create_engine(url, **options)
    with pytest.raises(sa.exc.OperationalError, match="unable to open"):
        engine.connect()
    engine.dispose()
    assert not (corpus / "shop" / "nowhere.db").exists()


def test_an_in_memory_sqlite_source_is_refused(corpus):
    with pytest.raises(IngestError, match="name the SQLite file"):
        _read_only_sqlite(sa.make_url("sqlite://"), corpus / "shop")


def test_build_folders_of_killed_runs_are_removed_and_running_ones_kept(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    killed = tmp_path / f".tmp-20240101-000000-{finished.stdout.strip()}"
    running = tmp_path / f".tmp-20240101-000001-{os.getppid()}"
    ours = tmp_path / f".tmp-20240101-000002-{os.getpid()}"
    for folder in (killed, running, ours):
        (folder / "pages").mkdir(parents=True)

    removed = _remove_abandoned_builds(tmp_path)

    assert removed == [killed]
    assert not killed.exists() and running.exists() and ours.exists()


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_partial_one(tmp_path):
    target = tmp_path / "rejects.csv"
    target.write_text("previous\n", encoding="utf-8")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as partial:
        partial.write_text("half a ", encoding="utf-8")
        raise OSError("disk full")
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rejects.csv"]
