"""The metric interface: the one place that says what a metric computes and how it is reported.

A metric declares its `columns` (name, direction, ideal, order, whether it is shown against Retrain) and
computes them at one of five moments:

- `per_model(outputs)`: from one model's outputs on the evaluated splits, for the original, unlearned and
  Retrain models alike (accuracies, MIA scores); with `needs_features` the outputs also carry each split's
  penultimate features, from the same pass (linear probe);
- `between_models(outputs)`: for every model, from all models' outputs on `compared_splits`, features
  included (representation similarity);
- `with_models(ctx)`: for every model, from the models themselves, which it must leave unchanged
  (`needs_models`; relearning attack);
- `with_shadows(ctx)`: for the unlearned model, from shadow models trained through `ctx` (`needs_shadows`);
- `compare(values)`: for the unlearned model, from every model's values (Avg Gap).

The console table, results.json `metric_info` and `unlearn-report` all read the columns, so adding a
metric touches its file and its YAML in conf/eval/ only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

RETRAIN = "retrain"  # the ideal of a metric judged by how close it is to the Retrain model's value


@dataclass(frozen=True)
class Column:
    """One reported value. `ideal` is RETRAIN or a number in the stored unit (fractions for shares)."""

    name: str
    order: int  # position in tables, smaller first
    label: str = ""  # short column title in the console table (default: the name)
    ideal: float | str | None = RETRAIN
    direction: str = "closer to retrain"  # or "closer to <ideal>", "lower", "higher", "diagnostic"
    table: bool = True  # shown in the console table (long families stay in results.json and the report)
    extra: dict[str, Any] = field(default_factory=dict)  # feature, definition, ... (into metric_info)

    @property
    def vs_retrain(self) -> bool:
        """Reported with its gap to Retrain: only where Retrain's value is the target."""
        return self.ideal == RETRAIN

    def info(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("name")
        out.update(out.pop("extra"), vs_retrain=self.vs_retrain, label=self.label or self.name)
        return out


class Metric(ABC):
    """Base class of every metric (see the module docstring)."""

    needs_shadows: ClassVar[bool] = False
    needs_features: ClassVar[bool] = False  # per_model's outputs carry `features` (penultimate layer)
    needs_models: ClassVar[bool] = False  # with_models is called
    compared_splits: tuple[str, ...] = ()  # the splits whose outputs between_models reads (none: not called)

    @abstractmethod
    def columns(self) -> list[Column]:
        """Every value this metric reports, in any of its three moments."""

    def per_model(self, outputs: dict) -> dict[str, float]:
        """Values from one model's outputs (`evaluation.SplitOutputs` per split name)."""
        return {}

    def between_models(self, outputs: dict[str, dict]) -> dict[str, dict[str, float]]:
        """Each model's values from every evaluated model's outputs: model name -> split name -> outputs."""
        return {}

    def with_models(self, ctx) -> dict[str, dict[str, float]]:
        """Each model's values (model name -> values) from the models in `ctx.models` (None: absent),
        which must come back unchanged (`evaluation.ShadowContext`)."""
        return {}

    def with_shadows(self, ctx) -> dict[str, float]:
        """Values of the unlearned model from shadow models (`evaluation.ShadowContext`)."""
        return {}

    def compare(self, model: dict[str, float], retrain: dict[str, float]) -> dict[str, float]:
        """Values of a model relative to the Retrain model's (given both models' other values)."""
        return {}

    def info(self) -> dict[str, dict[str, Any]]:
        """results.json `metric_info`: every column's direction, ideal, order and details."""
        return {column.name: column.info() for column in self.columns()}
