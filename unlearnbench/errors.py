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
    """Dataset files are not on disk and downloading is off (or failed)."""

    def __init__(self, dataset: str, root: str, expected: str):
        super().__init__(
            f"dataset={dataset}: files not found under {root} (expected {expected}); "
            f"set paths.data_dir=DIR to where they are, or add dataset.download=true on a machine "
            f"with internet access"
        )


class InputAbort(SystemExit):
    """Carries a single run's `UserError` out through Hydra (which intercepts `Exception`, and would print
    its own lines) to the CLI, which prints it as one line and exits with code 2."""

    def __init__(self, error: UserError):
        super().__init__(2)
        self.error = error
