"""The Jupyter server extension: REST handlers over the engine and their JSON wire format."""
