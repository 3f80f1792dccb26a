"""What the command line says about bad input: one line naming the key, the bad value and what is allowed,
with a "did you mean" suggestion for typos."""

from __future__ import annotations

import re
from pathlib import Path

from unlearnbench.config.core import config_dir, group_options
from unlearnbench.config.suggest import did_you_mean, unknown_key
from unlearnbench.errors import UserError


def user_config_dirs(argv: list[str]) -> tuple[Path, ...]:
    """The folders given by Hydra's `--config-dir DIR` / `-cd DIR` / `--config-dir=DIR`."""
    dirs = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
    return tuple(dirs)


def unknown_option(group: str, value: str, extra_dirs: tuple[Path, ...] = ()) -> str:
    allowed = group_options(group, extra_dirs)
    return "; ".join(
        [f"{group}={value} is not an option", *did_you_mean(value, allowed), f"allowed: {', '.join(allowed)}"]
    )


def one_line(err: BaseException, argv: list[str]) -> str | None:
    """The one-line message for an input error, or None when `err` is not one (a bug keeps its traceback)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and "/" in err.missing_cfg_file:
        group, value = err.missing_cfg_file.rsplit("/", 1)
        return unknown_option(group, value, user_config_dirs(argv))
    cause = err.__cause__
    if (
        isinstance(err, ConfigCompositionException)
        and isinstance(cause, (ConfigAttributeError, ConfigKeyError))
        and cause.full_key
    ):  # an override of a key the config does not have (`forget_rato=0.2`)
        return unknown_key(cause.full_key, argv)
    if isinstance(err, (ConfigCompositionException, OverrideParseException)):
        text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        return text.split(" Config search path")[0]  # Hydra's own sentence, without its search-path listing
    return None


def check_group_options(argv: list[str]) -> None:
    """Unknown group options, alone or in a comma list (`-m method=ft,nope`), stop before the first job.

    Other sweep syntax (glob, range, Optuna's interval, ...) is left to Hydra, which resolves it per job.
    """
    extra = user_config_dirs(argv)
    for arg in argv:
        match = re.fullmatch(r"([\w/]+)=([\w.\-]+(?:,[\w.\-]+)*)", arg)
        if match and group_options(match.group(1), extra):
            for value in match.group(2).split(","):
                if value not in group_options(match.group(1), extra) and value != "null":
                    raise UserError(unknown_option(match.group(1), value, extra))


def help_text() -> str:
    """`unlearn --help`: the header, every config group with its options, and the footer of
    conf/hydra/default.yaml's `help` (read directly: Hydra's own help composes the config once per group)."""
    import string

    from omegaconf import OmegaConf

    from unlearnbench.methods.registry import summary_lines

    conf = config_dir()
    texts = OmegaConf.load(conf / "hydra" / "default.yaml").help
    groups = sorted(
        str(folder.relative_to(conf))
        for folder in conf.rglob("*")
        if folder.is_dir() and folder.name != "hydra" and any(folder.glob("*.yaml"))
    )
    lines = [f"{group}: {', '.join(group_options(group))}" for group in groups]
    body = "\n".join(
        [
            texts.header.rstrip(),
            "",
            "== Configuration groups ==",
            "Compose your configuration from those groups (group=option)",
            "",
            *lines,
            "",
            "== Methods (method=...) ==",
            "What each does [the data it sees; the scenarios, where not all]",
            "",
            *summary_lines(),
            "",
            "Print the composed configuration: unlearn --cfg job [overrides]",
            "",
            texts.footer.rstrip(),
        ]
    )
    return string.Template(body).safe_substitute()
