"""Shared fixtures: the committed sample shop, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_config():
    from toolkit.config import load_config

    return load_config(SAMPLE_DIR)


@pytest.fixture(scope="session")
def sample_tables(sample_config):
    """The canonical orders, events and costs of data/sample (treat as read-only)."""
    from toolkit.ingest import load_tables

    return load_tables(SAMPLE_DIR, sample_config).tables
