"""Ingestion: vendor exports in, gridded glucose series and quality reports out."""

from glurpc_lab.ingest.errors import MAX_INPUT_BYTES, IngestError
from glurpc_lab.ingest.quality import QualityReport
from glurpc_lab.ingest.reader import read_export, read_path
from glurpc_lab.ingest.series import GRID_MINUTES, CgmDataset, GlucoseSeries
from glurpc_lab.ingest.units import MMOL_TO_MGDL, to_display_units

__all__ = [
    "GRID_MINUTES",
    "MAX_INPUT_BYTES",
    "MMOL_TO_MGDL",
    "CgmDataset",
    "GlucoseSeries",
    "IngestError",
    "QualityReport",
    "read_export",
    "read_path",
    "to_display_units",
]
