"""Several processes sharing one store, and writers killed with SIGKILL mid-write.

The writers are real processes writing through ``Store``. One helper process
imports the store once and forks a writer per round, because forking takes
milliseconds where a fresh interpreter takes seconds, which keeps 50 kills fast.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from glurpc_lab.engine import layout
from glurpc_lab.engine.store import Store

WRITER = r'''
import hashlib, os, sys
import numpy as np
from glurpc_lab.engine.store import Store
from glurpc_lab.forecast.result import DEFAULT_LEVELS, Forecast

def key(number):
    return hashlib.sha256(f"entry-{number}".encode()).hexdigest()

def forecast(number):
    # The content depends only on the number, so a reader can check every value.
    rng = np.random.default_rng(number)
    windows = 1 + number % 40
    ends = np.arange(95, 95 + windows, dtype=np.int64)
    return Forecast(
        subject=f"s{number}", input_end=ends,
        time_end=np.datetime64("2024-01-01T00:00:00") + (ends * 300).astype("timedelta64[s]"),
        horizon_minutes=np.arange(5, 65, 5), levels=np.asarray(DEFAULT_LEVELS),
        quantiles=rng.normal(120, 20, (windows, 12, len(DEFAULT_LEVELS))).astype(np.float32),
        sample_mean=rng.normal(120, 20, (windows, 12, 3)).astype(np.float32),
        sample_std=rng.uniform(5, 15, (windows, 12, 3)).astype(np.float32),
        truth=rng.normal(120, 20, (windows, 12)).astype(np.float32),
        seed=number, model_id="tiny-test", metadata={"number": number},
    )

def write(store, number, replace=False):
    return store.write_forecast(key(number), forecast(number), {"number": number}, replace=replace)

mode, root = sys.argv[1], sys.argv[2]
if mode == "batch":
    # Write the given numbers once each; report which this process published.
    store = Store(root)
    published = [n for n in map(int, sys.argv[3:]) if write(store, n)]
    print(" ".join(map(str, published)), flush=True)
elif mode == "fork-server":
    budget = int(sys.argv[3])
    print("ready", flush=True)
    for line in sys.stdin:
        command, value = line.split()
        if command == "fork":
            pid = os.fork()
            if pid == 0:
                store = Store(root, budget_bytes=budget)
                number = int(value) * 1000
                while True:
                    # Replacing earlier numbers exercises the rename-away path as well.
                    write(store, number, replace=number % 3 == 0)
                    if number % 4 == 0:
                        write(store, number - 2, replace=True)
                    number += 1
            print(pid, flush=True)
        elif command == "reap":
            os.waitpid(int(value), 0)
            print("reaped", flush=True)
'''


@pytest.fixture
def writer_script(tmp_path) -> Path:
    path = tmp_path / "writer.py"
    path.write_text(WRITER)
    return path


def _namespace():
    """The writer script's helpers, run here to compute expected content."""
    namespace: dict = {}
    code = WRITER.split("mode, root = sys.argv[1], sys.argv[2]")[0]
    exec(compile(code, "writer-helpers", "exec"), namespace)
    return namespace


def _assert_valid(root: Path, helpers: dict) -> list[int]:
    """Check every visible entry is complete and contains exactly what its writer wrote; return their numbers."""
    store = Store(root)
    assert store.verify() == []
    numbers = []
    for entry in store.forecasts_dir.iterdir():
        if not layout.is_key(entry.name):
            continue
        actual = store.read_forecast(entry.name)
        if actual is None:
            # Evicted by the budget between the listing and the read.
            continue
        number = int(actual.metadata["number"])
        expected = helpers["forecast"](number)
        assert entry.name == helpers["key"](number)
        np.testing.assert_array_equal(actual.quantiles, expected.quantiles)
        np.testing.assert_array_equal(actual.sample_std, expected.sample_std)
        np.testing.assert_array_equal(actual.truth, expected.truth)
        np.testing.assert_array_equal(actual.input_end, expected.input_end)
        numbers.append(number)
    return numbers


def test_concurrent_writers_lose_nothing(tmp_path, writer_script):
    root = tmp_path / "store"
    Store(root)
    # Every process writes 30 numbers; neighbours overlap by 15, so each shared entry has two candidate writers.
    plans = [list(range(start, start + 30)) for start in (0, 15, 30, 45)]
    processes = [
        subprocess.Popen(
            [sys.executable, str(writer_script), "batch", str(root), *map(str, plan)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for plan in plans
    ]
    published = []
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        published += [int(number) for number in output.split()]

    expected = sorted(set().union(*plans))
    assert sorted(published) == expected
    assert sorted(_assert_valid(root, _namespace())) == expected
    assert [entry.name for entry in Store(root).forecasts_dir.iterdir() if entry.name.startswith(".")] == []


def test_sigkilled_writers_leave_valid_store(tmp_path, writer_script):
    root = tmp_path / "store"
    Store(root)
    helpers = _namespace()
    rng = random.Random(5)
    server = subprocess.Popen(
        [sys.executable, str(writer_script), "fork-server", str(root), str(150_000)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout.readline().strip() == "ready"
        survivors = []
        for round_number in range(50):
            server.stdin.write(f"fork {round_number}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())

            time.sleep(rng.uniform(0.02, 0.3))
            os.kill(pid, signal.SIGKILL)
            server.stdin.write(f"reap {pid}\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "reaped"

            survivors.append(len(_assert_valid(root, helpers)))
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    # The writers did publish between kills, and left hidden debris at most.
    assert max(survivors) > 0
    leftovers = [entry.name for entry in Store(root).forecasts_dir.iterdir() if not layout.is_key(entry.name)]
    assert all(name.startswith((layout.TEMP_PREFIX, layout.TRASH_PREFIX)) for name in leftovers)
