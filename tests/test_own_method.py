"""The README's own-method example, run as a user would: from a folder outside the repository, through the
installed `unlearn` command (not `python -m`, which would put the folder on the import path by itself)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
UNLEARN = Path(sys.executable).parent / "unlearn"


def readme_block(after: str, language: str) -> str:
    """The first ```language block that follows the line containing `after` in the README."""
    text = README.read_text()
    start = text.index(after)
    return re.search(rf"```{language}\n(.*?)```", text[start:], re.S).group(1)


def write_example(folder: Path) -> None:
    (folder / "conf" / "method").mkdir(parents=True)
    (folder / "my_methods.py").write_text(readme_block("`my_methods.py`:", "python"))
    (folder / "conf" / "method" / "ascent_repair.yaml").write_text(
        readme_block("`conf/method/ascent_repair.yaml`", "yaml")
    )


def user_command(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HYDRA_FULL_ERROR="0", WANDB_MODE="offline")
    return subprocess.run(
        [str(UNLEARN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_readme_example_method_runs_from_a_users_folder(tmp_path):
    write_example(tmp_path)
    done = user_command(["--config-dir", "conf", "method=ascent_repair", "debug=fast"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^ascent_repair!?\s", done.stdout, re.M), done.stdout
    (results,) = (tmp_path / "outputs").rglob("results.json")
    res = json.loads(results.read_text())
    assert res["method"] == "ascent_repair" and res["metrics"]["forget_acc"] is not None


def test_a_target_that_cannot_be_imported_is_one_line_and_writes_no_run(tmp_path):
    write_example(tmp_path)
    done = user_command(
        ["--config-dir", "conf", "method=ascent_repair", "method._target_=my_methods.Nope", "debug=fast"],
        tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "method._target_='my_methods.Nope'" in lines[0], done.stderr
    assert not list((tmp_path / "outputs").rglob("results.json")) if (tmp_path / "outputs").exists() else True
    typo = user_command(["--config-dir", "conf", "method=ascent_repai"], tmp_path)
    assert typo.returncode == 2 and "did you mean ascent_repair?" in typo.stderr
