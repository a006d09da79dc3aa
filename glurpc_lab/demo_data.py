"""The bundled default input: a real Dexcom Clarity export fetched from PyPI.

The iglu-python 0.4.3 source distribution carries real, anonymised Dexcom
Clarity exports (``tests/data/dexcom_eur_0*.xlsx``, EU format, mmol/L). The
sdist's LICENSE file is GPL-2. We do not redistribute it: ``fetch_demo_export``
downloads the sdist with pip, checks its sha256 and caches the extracted file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SDIST_NAME = "iglu_python-0.4.3.tar.gz"
SDIST_REQUIREMENT = "iglu-python==0.4.3"
SDIST_SHA256 = "7ece97cd50fbf0eae95572c830908225cbfecc37d2ef4475a8cf02d3462bf4dd"
DEMO_EXPORTS = ("dexcom_eur_01.xlsx", "dexcom_eur_02.xlsx", "dexcom_eur_03.xlsx")
DEFAULT_DEMO_EXPORT = "dexcom_eur_01.xlsx"


class DemoDataError(RuntimeError):
    """The demo export could not be fetched or failed its checksum."""


def cache_root() -> Path:
    """Return the user cache folder of glurpc-lab (``$GLURPC_LAB_CACHE`` overrides it)."""
    configured = os.environ.get("GLURPC_LAB_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "glurpc-lab"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_sdist(target_dir: Path) -> Path:
    """Download the iglu-python sdist into ``target_dir`` with pip and verify it."""
    sdist = target_dir / SDIST_NAME
    if sdist.exists() and _sha256(sdist) == SDIST_SHA256:
        return sdist

    with tempfile.TemporaryDirectory(dir=target_dir) as scratch:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--disable-pip-version-check", "--quiet", "--dest", scratch, SDIST_REQUIREMENT,
        ]
        log.info("downloading %s from PyPI", SDIST_REQUIREMENT)
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        downloaded = Path(scratch) / SDIST_NAME
        if result.returncode != 0 or not downloaded.exists():
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DemoDataError(
                f"failed to download {SDIST_REQUIREMENT} from PyPI ({detail[0]}). "
                "Check the network or pass your own export to 'glurpc-lab forecast FILE'."
            )

        actual = _sha256(downloaded)
        if actual != SDIST_SHA256:
            raise DemoDataError(
                f"{SDIST_NAME} has sha256 {actual}, expected {SDIST_SHA256}; refusing to use it."
            )
        os.replace(downloaded, sdist)
    return sdist


def fetch_demo_export(name: str = DEFAULT_DEMO_EXPORT, cache_dir: Path | None = None) -> Path:
    """Return the path of a cached real Dexcom Clarity export, downloading it once.

    Parameters
    ----------
    name : str
        One of ``DEMO_EXPORTS``.
    cache_dir : pathlib.Path, optional
        Where to keep the sdist and the extracted file; defaults to ``cache_root() / "demo"``.

    Raises
    ------
    DemoDataError
        When pip cannot download the sdist or its checksum does not match.
    """
    if name not in DEMO_EXPORTS:
        raise ValueError(f"unknown demo export {name!r}; choose one of {', '.join(DEMO_EXPORTS)}")

    folder = Path(cache_dir) if cache_dir else cache_root() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    extracted = folder / name
    if extracted.exists():
        return extracted

    sdist = _download_sdist(folder)
    member = f"iglu_python-0.4.3/tests/data/{name}"
    with tarfile.open(sdist, "r:gz") as archive:
        source = archive.extractfile(member)
        if source is None:
            raise DemoDataError(f"{SDIST_NAME} has no file {member}")
        partial = extracted.with_suffix(".partial")
        partial.write_bytes(source.read())
    os.replace(partial, extracted)
    return extracted
