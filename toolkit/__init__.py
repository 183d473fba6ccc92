"""journeycast: customer-journey analytics with cash-flow forecasting.

The flow runs one way: sources -> canonical tables (``ingest``) -> journey
analytics (``journey``) and series (``flows``) -> forecasts (``forecast``) ->
cash position (``cash``) and opportunities (``opportunities``) -> charts and
widgets -> notebooks -> reports (``reports``).
"""

__version__ = "0.1.0"
