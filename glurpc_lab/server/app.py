"""The jupyter_server extension that serves the engine over REST."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Unicode, validate

from glurpc_lab.engine import Engine
from glurpc_lab.forecast.pipeline import DEFAULT_BATCH_SIZE
from glurpc_lab.ingest import MAX_INPUT_BYTES
from glurpc_lab.server.handlers import route_table


class GlurpcLabApp(ExtensionApp):
    """Serve glucose forecasts under ``<base_url>/glurpc-lab/``.

    One :class:`~glurpc_lab.engine.Engine` is created when the server starts
    and shared by every request. Configure it with ``--GlurpcLabApp.<trait>``
    or in ``jupyter_server_config.py``.
    """

    name = "glurpc_lab"
    description = "Gluformer glucose forecasts from CGM exports"

    model_source = Unicode(
        "bundled",
        config=True,
        help=(
            "Model to load: 'bundled' for the small model shipped with glurpc-lab, a path to a "
            "weights file with its config JSON beside it, or 'hf:OWNER/REPO/FILE[@REVISION]'."
        ),
    )
    cache_dir = Unicode(
        "",
        config=True,
        help="Directory of the zarr store of datasets and forecasts; empty means ~/.cache/glurpc-lab/store.",
    )
    devices = List(
        Unicode(),
        default_value=[],
        config=True,
        help=(
            "Torch devices for the model copies, e.g. ['cuda:0', 'cuda:1']; a device may repeat. "
            "Empty means every CUDA device when CUDA is available, else ['cpu']."
        ),
    )
    copies_per_device = Int(1, config=True, help="Model copies loaded on each device.")
    n_samples = Int(10, config=True, help="MC-dropout samples per forecasting window.")
    seed = Int(0, config=True, help="Seed of the MC-dropout sampling.")
    max_upload_bytes = Int(
        MAX_INPUT_BYTES,
        config=True,
        help=(
            "Maximum upload size in bytes; larger uploads get HTTP 413. "
            "The default is the ingestion limit, glurpc_lab.ingest.MAX_INPUT_BYTES."
        ),
    )
    model_wait_seconds = Float(
        600.0,
        config=True,
        help="Maximum wait in seconds for a free model copy before a request gets HTTP 503.",
    )
    max_workers = Int(
        4,
        config=True,
        help="Threads that run parsing, store I/O and inference off the event loop.",
    )
    preload_model = Bool(
        True,
        config=True,
        help="Load the model copies in the background at start-up instead of on the first forecast.",
    )
    prefetch_forecasts = Bool(
        True,
        config=True,
        help="After process_unified, compute the first series' forecasts in the background.",
    )
    batch_size = Int(
        DEFAULT_BATCH_SIZE,
        config=True,
        help="Windows per forward pass; halved on a device after it runs out of memory.",
    )
    max_queued_interactive = Int(
        64,
        config=True,
        help="Maximum queued interactive forecast jobs; beyond it requests get HTTP 503 with Retry-After.",
    )
    max_queued_background = Int(
        1024,
        config=True,
        help="Maximum queued background forecast jobs; beyond it requests get HTTP 503 with Retry-After.",
    )
    memory_cache_bytes = Int(
        256 * 1024 * 1024,
        config=True,
        help="Size limit in bytes of the in-memory forecast cache in front of the store; 0 disables it.",
    )
    store_budget_bytes = Int(
        0,
        config=True,
        help=(
            "Size limit in bytes of the store on disk, kept by deleting the least recently used "
            "entries; 0 means no limit."
        ),
    )
    background_fill = Bool(
        True,
        config=True,
        help="After returning a latest-window forecast, compute the series' other windows in the background.",
    )
    per_user_namespaces = Bool(
        False,
        config=True,
        help=(
            "Keep each user's datasets and forecasts in a namespace of their own, derived from the "
            "user name (as JupyterHub reports it), so users cannot read each other's uploads."
        ),
    )
    admin_users = List(
        Unicode(),
        default_value=[],
        config=True,
        help="User names allowed to flush the cache (POST glurpc-lab/cache/flush).",
    )

    @validate(
        "copies_per_device",
        "n_samples",
        "max_upload_bytes",
        "max_workers",
        "batch_size",
        "max_queued_interactive",
        "max_queued_background",
    )
    def _validate_positive(self, proposal):
        value = proposal["value"]
        if value < 1:
            raise ValueError(f"GlurpcLabApp.{proposal['trait'].name} must be at least 1, got {value}")
        return value

    @validate("memory_cache_bytes", "store_budget_bytes")
    def _validate_bytes(self, proposal):
        value = proposal["value"]
        if value < 0:
            raise ValueError(f"GlurpcLabApp.{proposal['trait'].name} must be 0 or more bytes, got {value}")
        return value

    @validate("model_wait_seconds")
    def _validate_wait(self, proposal):
        value = proposal["value"]
        if value <= 0:
            raise ValueError(f"GlurpcLabApp.model_wait_seconds must be positive, got {value}")
        return value

    def initialize_settings(self) -> None:
        """Create the engine and the thread pool, and start loading the model when configured."""
        self.engine = Engine(
            self.model_source or None,
            devices=list(self.devices) or None,
            copies_per_device=self.copies_per_device,
            cache_dir=self.cache_dir or None,
            n_samples=self.n_samples,
            seed=self.seed,
            model_wait_seconds=self.model_wait_seconds,
            batch_size=self.batch_size,
            max_queued_interactive=self.max_queued_interactive,
            max_queued_background=self.max_queued_background,
            memory_cache_bytes=self.memory_cache_bytes,
            store_budget_bytes=self.store_budget_bytes or None,
            background_fill=self.background_fill,
        )
        self.executor = ThreadPoolExecutor(
            max_workers=self.max_workers, thread_name_prefix="glurpc-lab"
        )
        # Health checks get their own thread, so they respond while every work thread is busy.
        self.status_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glurpc-lab-status")
        # Without handlers of its own, the package logger reuses the server log, so engine logs show there.
        package_logger = logging.getLogger("glurpc_lab")
        if not package_logger.handlers:
            for handler in self.log.handlers:
                package_logger.addHandler(handler)
            package_logger.setLevel(logging.INFO)

        self.log.info(
            "glurpc_lab: store at %s, devices %s, %d copies per device",
            self.engine.cache_dir,
            ",".join(self.engine.devices),
            self.copies_per_device,
        )
        if self.preload_model:
            self.executor.submit(self._preload)

    def _preload(self) -> None:
        try:
            self.engine.load_models()
        except Exception as error:
            # The engine keeps the error for /health and retries on the next forecast.
            self.log.error("glurpc_lab: model preload failed: %s", type(error).__name__)

    def initialize_handlers(self) -> None:
        """Register the REST routes."""
        self.handlers.extend(route_table())

    async def stop_extension(self) -> None:
        """Stop accepting work and release the model copies."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.status_executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()
