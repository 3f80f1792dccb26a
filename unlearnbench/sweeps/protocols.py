"""The papers' protocols: which sweeps reproduce a paper's table, where their small results files are kept, and
the document that sets them beside the paper's values.

Each protocol is an experiment preset (conf/experiment/<name>.yaml: split, model, recipe, forget set, cited from
the authors' code) plus the runs below. `run_protocol` launches them as named `unlearn` sweeps (resumable: a
finished job is skipped), copies each finished job's results, without models, to docs/paper/<name>/ (a
`--smoke` run to docs/paper/<name>/smoke/), and regenerates docs/paper_<name>.md from every run kept there, so
seeds run by earlier sessions stay and later seeds add to the same document.

Meant for a GPU machine; `--smoke` runs every part tiny (debug=fast, stand-in local data) on a CPU, keeps it
apart in docs/paper/<protocol>/smoke/, and the document marks its numbers as smoke while no real run is kept.

  python scripts/paper.py salun_cifar10 --seeds 0              # SalUn Table 1, one seed
  python scripts/paper.py salun_cifar10 --seeds 1 2            # two more seeds, added to the same document
  python scripts/paper.py gradtau_cifar10 --smoke paths.data_dir=../shared/data
  python scripts/paper.py salun_cifar10 --report-only          # after a cut-off command: keep what finished
  make paper PROTOCOL=imu_cifar10                               (or `python -m unlearnbench.sweeps.protocols ...`)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

GA_CURVE_LR = ("1e-4", "3e-4", "1e-3", "3e-3", "1e-2")  # 1e-4 is GA's SalUn default


@dataclass(frozen=True)
class Part:
    """One multirun of a protocol: its overrides (beyond the preset and the seeds), and the config keys that
    tell its rows apart beside the method (e.g. GA's learning rate on a curve)."""

    overrides: tuple[str, ...]
    label_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Protocol:
    name: str  # = its preset, conf/experiment/<name>.yaml
    title: str
    parts: dict[str, Part]
    # A tiny version on the CPU: the preset's data swapped for a local stand-in, then debug=fast
    smoke: tuple[str, ...] = ()
    # The document's columns (unlearnbench/report/paper.py COLUMNS); SalUn's by default
    columns: tuple[str, ...] = ("UA", "RA", "TA", "MIA-Efficacy", "Avg Gap")

    def methods(self) -> list[str]:
        """Every method the protocol runs, in order. Retrain and the original are in every run's results (the
        references every run trains or loads), so they are not jobs of their own."""
        out: list[str] = []
        for part in self.parts.values():
            for item in part.overrides:
                if item.startswith("method="):
                    out += [m for m in item.split("=", 1)[1].split(",") if m not in out]
        return out


# The same CIFAR-10 images, from the JPEG archive of ../shared/data; the CIFAR ResNet-18 at width 8 (its stem
# and depth kept) so that ten methods' smoke runs take minutes, not an hour, on a 2-core CPU.
CIFAR_SMOKE = ("dataset=cifar10_jpeg",)
NARROW = ("model.width=8",)

PROTOCOLS = {
    p.name: p
    for p in (
        Protocol(
            "salun_cifar10",
            "SalUn, Table 1: random data forgetting (10 %), CIFAR-10, ResNet-18",
            {
                "table1": Part(
                    ("method=ft,random_label,ga,iu,boundary_expanding,boundary_shrink,l1_sparse,salun,imu",)
                )
            },
            smoke=(*CIFAR_SMOKE, *NARROW),
        ),
        Protocol(
            "imu_cifar10",
            "IMU vs GA at matched forget accuracy: random 10 %, CIFAR-10, ResNet-18",
            {
                "imu": Part(("method=imu",)),
                "ga_curve": Part(("method=ga", f"method.lr={','.join(GA_CURVE_LR)}"), ("method.lr",)),
            },
            smoke=(*CIFAR_SMOKE, *NARROW),
        ),
        Protocol(
            "gradtau_cifar10",
            "∇τ at 3 / 15 / 30 % random forgetting, CIFAR-10, torchvision ResNet-18",
            {"ratios": Part(("method=gradtau,ga,ft", "forget_ratio=0.03,0.15,0.3"), ("forget_ratio",))},
            smoke=CIFAR_SMOKE,
            columns=("forget acc", "RA", "TA", "MIA-loss", "MIA-entropy"),
        ),
        Protocol(
            "mnemonic_cifar10",
            "Mnemonic codes, class 0 forgotten, CIFAR-10, ResNet-18",
            {"class0": Part(("method=mnemonic",))},
            smoke=(*CIFAR_SMOKE, *NARROW),
            columns=("forget acc", "RA", "TA", "forgotten class test acc"),
        ),
        Protocol(
            "mnemonic_mnist",
            "Mnemonic codes, class 0 forgotten, MNIST, MLP 784-1000-10",
            {"class0": Part(("method=mnemonic",))},
            smoke=("dataset=digits",),  # no MNIST in ../shared/data: the embedded digits stand in
            columns=("forget acc", "RA", "TA", "forgotten class test acc"),
        ),
    )
}


def sweep_name(protocol: str, part: str, smoke: bool) -> str:
    return f"paper_{protocol}_{part}" + ("_smoke" if smoke else "")


def sweep_overrides(protocol: Protocol, part: str, seeds: list[int], smoke: bool, extra=()) -> list[str]:
    """The overrides of one part's `unlearn -m` sweep."""
    return [
        f"experiment={protocol.name}",
        *protocol.parts[part].overrides,
        f"seed={','.join(map(str, seeds))}",
        f"sweep={sweep_name(protocol.name, part, smoke)}",
        # debug=fast with one batch a pass, and with Retrain and the MIA / Avg Gap metrics (every column)
        *([*protocol.smoke, "debug=fast", "eval=standard", "runtime.limit_batches=1"] if smoke else []),
        *extra,
    ]


def results_dir(docs: Path, protocol: str, smoke: bool) -> Path:
    """Where a protocol's small results files are kept (committed): docs/paper/<protocol>[/smoke]/."""
    return docs / "paper" / protocol / ("smoke" if smoke else "")


def slim_record(results: dict, part: Part) -> dict:
    """The part of a job's results.json the document needs (no config dump, no model)."""
    cfg = OmegaConf.create(results.get("config") or {})
    label = {k: OmegaConf.select(cfg, k) for k in part.label_keys}
    env = results.get("env") or {}
    return {
        "method": results["method"],
        "seed": results["seed"],
        "label": label,
        "status": results["status"],
        "reason": results.get("reason"),
        "forget": results.get("forget"),
        "sizes": results.get("sizes"),
        "metrics": results.get("metrics"),
        "original": (results.get("original") or {}).get("metrics"),
        "retrain": (results.get("retrain") or {}).get("metrics"),
        "time_s": results.get("time_s"),
        "device": env.get("device_name") or env.get("device"),
        "precision": env.get("precision"),
    }


def collect(sweep_dir: Path, part: Part, dest: Path) -> int:
    """Copy each finished job of `sweep_dir` to dest/<method>[_<label>=<value>]_seed<k>.json (slim); return how
    many."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(sweep_dir.glob("*/results.json")):
        results = json.loads(path.read_text())
        if results.get("status") not in ("ok", "diverged"):
            continue
        kept = slim_record(results, part)
        labels = "".join(f"_{k.split('.')[-1]}={v}" for k, v in kept["label"].items())
        # one file per row and seed: a rerun of the same cell (say with other device options) replaces it
        out = dest / f"{kept['method']}{labels}_seed{kept['seed']}.json"
        out.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")
        count += 1
    return count


def load_records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def run_protocol(
    name: str, seeds: list[int], smoke: bool, extra: list[str], root: Path, run: bool = True
) -> int:
    """Run (or resume) every part of the protocol, keep the results, write the document; the exit status.

    `run=False` only keeps what the sweeps have finished so far and rewrites the document: after a command cut
    short by a time limit, the finished jobs are kept without waiting for the rest."""
    from unlearnbench.report.paper import write_document

    protocol = PROTOCOLS[name]
    unlearn = str(Path(sys.executable).parent / "unlearn")
    status = 0
    for part_name, part in protocol.parts.items():
        overrides = sweep_overrides(protocol, part_name, seeds, smoke, extra)
        if run:
            print("unlearn -m " + " ".join(overrides), flush=True)
            status = status or subprocess.run([unlearn, "-m", *overrides], cwd=root).returncode
        sweep_dir = root / "outputs" / "sweeps" / sweep_name(name, part_name, smoke)
        collect(sweep_dir, part, results_dir(root / "docs", name, smoke))
    doc = write_document(protocol, root / "docs")
    print(f"wrote {doc.relative_to(root)}", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    """The command line: run a paper's protocol and write docs/paper_<protocol>.md, ours beside the paper's."""
    from unlearnbench.sweeps.named import ROOT

    p = argparse.ArgumentParser(
        description="Run a paper's protocol and write its document (docs/paper_<name>.md)."
    )
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--smoke", action="store_true", help="debug=fast on local stand-in data: a quick end-to-end check"
    )
    p.add_argument(
        "--report-only", action="store_true", help="keep the runs finished so far and rewrite the document"
    )
    p.add_argument("overrides", nargs="*", help="extra overrides, e.g. paths.data_dir=/data trainer=gpu")
    args = p.parse_intermixed_args(argv)
    return run_protocol(args.protocol, args.seeds, args.smoke, args.overrides, ROOT, run=not args.report_only)


if __name__ == "__main__":
    sys.exit(main())
