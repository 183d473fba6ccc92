"""environment.yml (conda) must offer exactly the packages and ranges of pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import yaml

from conftest import ROOT

#: Where conda-forge names a package differently from PyPI.
CONDA_NAMES = {"duckdb": "python-duckdb", "dask[distributed]": "dask"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*(.*)", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        req for extra in ("test", "dask") for req in project["optional-dependencies"][extra]
    ]
    expected = {CONDA_NAMES.get(name, name): spec for name, spec in map(_split, wanted)}

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    declared = dict(_split(d) for d in conda if not d.startswith(("python=", "pip")))

    assert "python=3.11" in conda
    assert declared == expected
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-e ."], "the project itself is installed from source"
