"""The machine's measured fp32 matrix-multiply rate, the yardstick for inference efficiency."""

from __future__ import annotations

import time

import torch


def matmul_rate(sizes: tuple[int, ...] = (1024, 2048), *, repeats: int = 5, device: str = "cpu") -> dict:
    """Measure fp32 ``torch.mm`` of square matrices and return the best rate over sizes.

    A product of two ``n x n`` matrices counts ``2 n^3`` floating-point operations.
    Each size runs once untimed, then ``repeats`` times; its rate comes from the
    fastest repeat, so short stalls from other processes count less.

    Returns
    -------
    dict
        ``best_flops_per_s`` and, per size, ``flops_per_s`` and ``seconds`` of the fastest repeat.
    """
    per_size = {}
    for n in sizes:
        generator = torch.Generator(device="cpu").manual_seed(n)
        a = torch.rand(n, n, generator=generator).to(device)
        b = torch.rand(n, n, generator=generator).to(device)
        torch.mm(a, b)
        fastest = float("inf")
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            torch.mm(a, b)
            if device.startswith("cuda"):
                torch.cuda.synchronize(device)
            fastest = min(fastest, time.perf_counter() - started)
        per_size[str(n)] = {"seconds": fastest, "flops_per_s": 2.0 * n**3 / fastest}
    best = max(entry["flops_per_s"] for entry in per_size.values())
    return {"dtype": "float32", "device": device, "threads": torch.get_num_threads(), "best_flops_per_s": best, "sizes": per_size}
