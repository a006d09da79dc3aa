"""Ingestion: vendor exports in, gridded glucose series and quality reports out."""

from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.series import GRID_MINUTES, CgmDataset, GlucoseSeries

__all__ = ["GRID_MINUTES", "CgmDataset", "GlucoseSeries", "QualityReport"]
