"""Multipart uploads and gluRPC's convert_to_unified on a real Jupyter server."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from tornado.httpclient import HTTPClientError

from conftest import CORPORA

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"vendor exports not found at {CORPORA}")


def multipart(fields: dict[str, bytes]) -> tuple[bytes, dict]:
    """Encode ``fields`` as file parts of a multipart/form-data body."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, content in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode() + content + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def test_multipart_upload_matches_raw_body(jp_fetch, small_export):
    body, headers = multipart({"file": small_export})

    from_form = await jp_fetch("glurpc-lab", "datasets", method="POST", body=body, headers=headers)
    from_body = await jp_fetch("glurpc-lab", "datasets", method="POST", body=small_export)

    assert from_form.code == 201
    assert json.loads(from_form.body)["handle"] == json.loads(from_body.body)["handle"]


async def test_multipart_with_two_files_is_400(jp_fetch, small_export):
    body, headers = multipart({"first": small_export, "second": small_export})

    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("glurpc-lab", "datasets", method="POST", body=body, headers=headers)

    assert raised.value.code == 400
    assert "exactly one" in json.loads(raised.value.response.body)["message"]


@needs_corpora
async def test_convert_to_unified_returns_grid(jp_fetch):
    export = (CORPORA / "Clarity_Export_synthetic.csv").read_bytes()
    body, headers = multipart({"file": export})

    response = await jp_fetch("glurpc-lab", "convert_to_unified", method="POST", body=body, headers=headers)

    payload = json.loads(response.body)
    rows = list(csv.DictReader(io.StringIO(payload["csv_content"])))
    assert response.code == 200
    assert payload["error"] is None
    assert rows[0].keys() >= {"sequence_id", "datetime", "glucose", "quality", "event_type"}
    assert {row["event_type"] for row in rows} == {"EGV_READ"}
    assert {row["sequence_id"] for row in rows} == {"1", "2"}  # the export has two gap-free segments
    assert sum(int(row["quality"]) & 1 for row in rows) >= 5  # its five Low readings are censored


async def test_convert_garbage_is_400(jp_fetch):
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("glurpc-lab", "convert_to_unified", method="POST", body=b"name,comment\nAda,hello\n")

    assert raised.value.code == 400
    assert "Ada" not in json.loads(raised.value.response.body)["message"]
