"""Many runs: named resumable sweeps (named), the sweep summary (jobs), Slurm (slurm) and fair tuning (tuning)."""
