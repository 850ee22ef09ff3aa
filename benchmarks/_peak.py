"""The device's measured matmul peak, the denominator of the MFU that the benchmarks report on CUDA."""

from __future__ import annotations


def cuda_matmul_flops(device: str, size: int = 8192, reps: int = 10) -> dict[str, float]:
    """Best FLOP/s of a ``size`` x ``size`` matmul on the CUDA ``device`` (2 size^3 FLOPs; one
    warm-up, then the best of ``reps``, timed with CUDA events), by dtype: ``float32`` and
    ``bfloat16``. The matrices are freed afterwards."""
    import torch

    out = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            a @ b
            e.record()
            torch.cuda.synchronize()
            best = min(best, s.elapsed_time(e) / 1000)
        out[name] = 2 * size**3 / best
        del a, b
    torch.cuda.empty_cache()
    return out
