"""Reports: plotly fan charts and standalone HTML reports of forecasts."""

from glurpc_lab.report.figures import window_figure
from glurpc_lab.report.html import write_report

__all__ = ["window_figure", "write_report"]
