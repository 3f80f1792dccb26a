"""Speed benchmarks and the GPU check, as importable modules (each with `main(argv)`; scripts/ holds thin
command lines over them). Ratios measured side by side in one run, not absolute times, are their results.

- `train`: the runner's Lightning training vs a plain PyTorch loop (images/s);
- `command`: the `unlearn` command's own wait, cached, beside `import torch`;
- `imu`: IMU's closed-form influence vs the per-sample autograd loop;
- `lira`: shadow models per minute of `eval=full`, sequential vs batched;
- `threads`: one vs all CPU threads, on a quiet and a loaded machine;
- `benchmark`: the `python scripts/benchmark.py <case>` command line over the cases above;
- `gpu_check`: every speed and accuracy goal in one run on a GPU.
"""

from __future__ import annotations


def bench_device(name: str):
    """A benchmark's `--device` (cpu, cuda or auto) as a torch device; asking for CUDA where none is visible
    stops the command with the run's own one-line message (runtime.device_for)."""
    from unlearnbench.errors import ConfigError
    from unlearnbench.runtime import device_for

    try:
        return device_for(name, key="--device")
    except ConfigError as err:
        raise SystemExit(str(err)) from None
