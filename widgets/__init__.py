"""Widgets: anywidget front-ends whose JavaScript ships inside the package."""

from glurpc_lab.widgets.explorer import MAX_UPLOAD_BYTES, ForecastExplorer

__all__ = ["MAX_UPLOAD_BYTES", "ForecastExplorer"]
