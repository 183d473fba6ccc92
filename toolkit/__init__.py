"""journeycast: customer-journey analytics with cash-flow forecasting.

The flow runs one way: sources -> canonical tables (``ingest``) -> journey
analytics (``journey``) and series (``flows``) -> forecasts (``forecast``) ->
cash position (``cash``) and opportunities (``opportunities``) -> charts and
widgets -> notebooks -> reports (``reports``).
"""

import sys

__version__ = "0.1.0"

# jsonschema (under Altair and nbformat) checks the "iri" string formats with
# rfc3987-syntax when that imports (JupyterLab brings it), and importing it
# builds some 35 Earley parsers: 1-2.5 s of every kernel and command that
# draws a chart or runs a notebook, over half of the toolkit's import time.
# Without it jsonschema leaves those two formats unchecked, which changes
# nothing here: Vega-Lite's schema uses "uri", "uri-reference" and
# "color-hex", nbformat's none of them. So it is marked absent, unless
# jsonschema's format checks were loaded before the toolkit.
if "jsonschema._format" not in sys.modules:
    sys.modules.setdefault("rfc3987_syntax", None)
