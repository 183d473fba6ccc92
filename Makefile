# Two entry points, each bootstrapping its own virtual environment:
#   make report   run the full report on data/sample into reports/<run-id>/
#   make test     run the test suite (unit tests, notebooks with nbval, browser check)
# Nothing is needed beforehand but Python 3.11 (and root or sudo-less apt for Chromium).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Keep Jupyter, IPython, matplotlib and PyTensor runtime state inside the project.
export IPYTHONDIR          := $(CURDIR)/.cache/ipython
export JUPYTER_RUNTIME_DIR := $(CURDIR)/.cache/jupyter/runtime
export MPLCONFIGDIR        := $(CURDIR)/.cache/matplotlib
export PYTENSOR_FLAGS      := base_compiledir=$(CURDIR)/.cache/pytensor
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: report test install browser clean state

# The folders the runtime state goes to must exist before IPython looks at them.
state:
	@mkdir -p .cache/ipython .cache/jupyter/runtime .cache/matplotlib .cache/pytensor

install: $(STAMP)

# The last steps compile once what runs compiled, so no report run pays it:
# numba compiles ETS's recursion into its cache (about 2 s); scoring the
# sample's customers (result not kept) proves the install works.
$(STAMP): pyproject.toml | state
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	$(BIN)/python -c "from toolkit.forecast.ets import load_compiled; load_compiled()"
	JOURNEYCAST_STORE=off $(BIN)/journeycast opportunities data/sample --out .cache/install-check >/dev/null
	touch $@

# Headless Chromium checks that the offline reports really render, and drives the
# live notebooks in JupyterLab through Playwright (tests/test_jupyterlab.py), which
# uses this Chromium: Playwright's own browser download is never needed.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

report: $(STAMP) state
	$(BIN)/journeycast report data/sample

test: $(STAMP) state browser
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .cache
