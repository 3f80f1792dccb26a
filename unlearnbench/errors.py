"""User-facing errors: one line, naming the key, the bad value and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """An error caused by the user's input; the CLI prints it as one line and exits with code 2."""


class ConfigError(UserError):
    """A config key holds a value that is not allowed."""

    def __init__(self, key: str, value: object, allowed: str | Iterable[object]):
        if not isinstance(allowed, str):
            allowed = ", ".join(str(a) for a in allowed)
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed; allowed: {allowed}")


class DatasetMissingError(UserError):
    """Dataset files are not on disk and downloading is off or failed (offline)."""

    OFFLINE = {"cifar10": "dataset=cifar10_jpeg reads the CIFAR-10 JPEG archive offline"}

    def __init__(
        self,
        dataset: str,
        root: str,
        expected: str,
        download_error: str | None = None,
        downloadable: bool = True,
    ):
        from pathlib import Path

        where = Path(root).expanduser().resolve()
        why = (
            f"the download failed ({download_error})"
            if download_error is not None
            else "downloading is off (dataset.download=false)"
            if downloadable
            else "it is not downloadable"
        )
        offline = self.OFFLINE.get(dataset, "dataset=digits is embedded and needs no files")
        layout = " in torchvision's layout" if downloadable else ""
        super().__init__(
            f"dataset={dataset}: no {expected} under {where} and {why}; put the files there{layout}, "
            f"set paths.data_dir=DIR to where they are, or {offline}"
        )


class InputAbort(SystemExit):
    """Carries a single run's `UserError` out through Hydra (which intercepts `Exception`, and would print
    its own lines) to the CLI, which prints it as one line and exits with code 2."""

    def __init__(self, error: UserError):
        super().__init__(2)
        self.error = error
