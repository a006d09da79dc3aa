"""glurpc-lab: Gluformer glucose forecasts from CGM exports, in Jupyter and in Python."""

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    """Register the server extension with jupyter_server."""
    from glurpc_lab.server.app import GlurpcLabApp

    return [{"module": "glurpc_lab", "app": GlurpcLabApp}]
