"""The demo export: fetched from PyPI once, checked by sha256, then served from the cache."""

import hashlib

import pytest

from glurpc_lab import demo_data


def test_cached_export_needs_no_download(tmp_path, monkeypatch):
    cached = tmp_path / "dexcom_eur_01.xlsx"
    cached.write_bytes(b"cached")
    monkeypatch.setattr(demo_data, "_download_sdist", lambda folder: pytest.fail("downloaded again"))

    assert demo_data.fetch_demo_export(cache_dir=tmp_path) == cached


def test_unknown_demo_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown demo export"):
        demo_data.fetch_demo_export("patient.csv", cache_dir=tmp_path)


def test_tampered_sdist_is_downloaded_again(tmp_path, monkeypatch):
    (tmp_path / demo_data.SDIST_NAME).write_bytes(b"not the sdist")
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        raise demo_data.DemoDataError("stop here")

    monkeypatch.setattr(demo_data.subprocess, "run", fake_run)

    with pytest.raises(demo_data.DemoDataError):
        demo_data.fetch_demo_export(cache_dir=tmp_path)
    assert len(calls) == 1


@pytest.mark.slow
def test_fetch_from_pypi_matches_pinned_hash(tmp_path):
    export = demo_data.fetch_demo_export(cache_dir=tmp_path)

    sdist = tmp_path / demo_data.SDIST_NAME
    assert hashlib.sha256(sdist.read_bytes()).hexdigest() == demo_data.SDIST_SHA256
    assert export.name == "dexcom_eur_01.xlsx"
    assert export.read_bytes()[:2] == b"PK"  # an xlsx is a zip archive
