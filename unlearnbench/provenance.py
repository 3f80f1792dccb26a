"""What a result depends on beyond its config: the environment a run ran in and the version of the code.

- `environment(runtime)`: results.json `env`: the commit (and whether the tree had uncommitted changes),
  package, Python, torch, CUDA and cuDNN versions, device, CPU model, torch's thread count and the
  determinism flag. `short(env)` is its part of the console summary line.
- `code_version(entries)`: a hash of the source of the code listed in `entries`, read from the files
  (nothing is imported) as an AST dump, so comments, docstrings' layout and formatting do not count.
  `TRAINING_CODE` lists the code that determines a model trained from scratch (its hash is part of the
  model cache key); `METRIC_CODE` the code that computes a model's metric values (part of the key of the
  reference models' cached values).

Float results depend on the thread count (a reduction split over more threads adds in another order), on
the CPU's vector instructions and on the torch build: two runs are only expected to match where these match.
"""

from __future__ import annotations

import ast
import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import torch

import unlearnbench

# "package", "module" or "module:Qualified.name" (one definition of that module).
TRAINING_CODE = (
    "unlearnbench.models",  # architectures and their initialisation
    "unlearnbench.training.lightning",  # the training loop of one model
    "unlearnbench.training.batched",  # the stacked training loop of a group of models
    "unlearnbench.training.recipe",  # optimisers, schedules, seeding
    "unlearnbench.data.batches",  # batch order, crops, flips
    "unlearnbench.config.core:build",  # how a config node becomes a model / optimiser
    "unlearnbench.methods.base:TrainingHook",  # a method's change to the original's training
    "unlearnbench.methods.mnemonic:make_codes",  # Mnemonic's training hook: codes and mixing
    "unlearnbench.methods.mnemonic:mix_codes",
    "unlearnbench.methods.mnemonic:code_seed",
    "unlearnbench.methods.mnemonic:MnemonicUnlearning.training_hook",
    "unlearnbench.training.models:model_spec",  # what a cache key holds
    "unlearnbench.training.models:TrainedModels.fresh",  # where every model trained from scratch starts
    "unlearnbench.training.models:TrainedModels.trained",
    "unlearnbench.training.models:TrainedModels._train_one",
    "unlearnbench.training.models:TrainedModels._train_missing",
    "unlearnbench.training.models:TrainedModels._fit_group",
)
METRIC_CODE = (
    "unlearnbench.metrics",  # every metric, attack and per-sample feature
    "unlearnbench.evaluation",  # the models' outputs the metrics read
    "unlearnbench.methods.lib.common:descend",  # the relearning attack's optimiser step
)


def _source_file(module: str) -> tuple[Path, bool]:
    """(file, is_package) of `module`, found without importing it."""
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"provenance: code entry {module!r} names no module")
    return Path(spec.origin), spec.submodule_search_locations is not None


def _definition(tree: ast.Module, qualname: str, where: str) -> ast.AST:
    node: ast.AST = tree
    for part in qualname.split("."):
        found = [
            child
            for child in getattr(node, "body", [])
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and child.name == part
        ]
        if not found:
            raise ValueError(f"provenance: code entry {where!r}: no definition {qualname!r}")
        node = found[0]
    return node


def _dump(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def entry_source(entry: str) -> str:
    """The AST dump of one `TRAINING_CODE` / `METRIC_CODE` entry; an error when it names nothing."""
    module, _, qualname = entry.partition(":")
    path, is_package = _source_file(module)
    if qualname:
        return ast.dump(_definition(_dump(path), qualname, entry))
    files = sorted(path.parent.rglob("*.py")) if is_package else [path]
    return "\n".join(f"{f.relative_to(path.parent)}\n{ast.dump(_dump(f))}" for f in files)


@lru_cache(maxsize=None)
def code_version(entries: tuple[str, ...]) -> str:
    """A short hash of the code named by `entries` (see the module docstring)."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry}\n{entry_source(entry)}\n".encode())
    return digest.hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(Path(unlearnbench.__file__).parent), *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def git_state() -> dict:
    """The commit of the package's git checkout and whether tracked files differ from it (None, None outside
    one, e.g. an installed wheel, or a checkout that holds another project)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != Path(unlearnbench.__file__).resolve().parent.parent:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": _git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment(runtime) -> dict:
    """results.json `env` (see the module docstring)."""
    from importlib.metadata import version

    cuda = runtime.device.type == "cuda"
    return {
        **git_state(),
        "unlearnbench": unlearnbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "pytorch_lightning": version("pytorch-lightning"),
        "hydra": version("hydra-core"),
        "torchmetrics": version("torchmetrics"),
        "platform": platform.platform(),
        "device": str(runtime.device),
        "device_name": torch.cuda.get_device_name(runtime.device) if cuda else cpu_model(),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "precision": runtime.precision,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "data_on_device": runtime.data_on_device,
        "training_code": code_version(TRAINING_CODE),
    }


def short(env: dict) -> str:
    """The summary line's provenance: commit, torch, threads and CPU (or GPU)."""
    commit = env.get("commit")
    code = (
        "no git commit"
        if commit is None
        else f"commit {commit[:8]}" + (" (dirty)" if env.get("dirty") else "")
    )
    determinism = "deterministic" if env.get("deterministic_algorithms") else "nondeterministic"
    return (
        f"{code}, torch {env.get('torch')}, {env.get('threads')} threads, {determinism}, "
        f"{env.get('device_name')}"
    )
