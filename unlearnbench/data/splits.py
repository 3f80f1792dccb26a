"""Train / val / test / forget / retain splits as index sets over uint8 tensors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch


@dataclass
class Split:
    """Images (uint8 [N, C, H, W]), labels (int64 [N]) and their positions in the source array."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def fingerprint(self) -> str:
        """A short hash of the sample positions: identifies this split in cache keys."""
        data = self.indices.to(torch.int64).cpu().numpy().tobytes()
        return hashlib.sha256(data).hexdigest()[:16]

    def to(self, device: torch.device | str) -> Split:
        return Split(self.name, self.x.to(device), self.y.to(device), self.indices)


@dataclass
class Splits:
    """All splits of one run. `train` = retain + forget: what the original model is trained on."""

    train: Split
    forget: Split
    retain: Split
    val: Split
    test: Split
    num_classes: int
    test_forget: Split | None = None  # class scenarios: test samples of the forgotten classes
    forget_classes: list[int] | None = None

    def eval_splits(self) -> dict[str, Split]:
        """The splits every model is evaluated on, in reporting order."""
        out = {"forget": self.forget, "retain": self.retain, "val": self.val, "test": self.test}
        if self.test_forget is not None:
            out["test_forget"] = self.test_forget
        return out

    def indices(self) -> dict[str, list[int]]:
        """Positions of each split in the dataset's train or test array (saved with the run)."""
        out = {name: s.indices.tolist() for name, s in self.eval_splits().items()}
        out["train"] = self.train.indices.tolist()
        return out


def carve_validation(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded per-class split of the training positions into (train, val), both sorted.

    `fraction` of every class goes to validation (rounded), so val is class-balanced and disjoint
    from everything trained on.
    """
    gen = torch.Generator().manual_seed(seed)
    val_parts = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        n_val = int(round(fraction * len(members)))
        val_parts.append(members[torch.randperm(len(members), generator=gen)[:n_val]])
    val = torch.sort(torch.cat(val_parts)).values if val_parts else torch.empty(0, dtype=torch.long)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val


def subset_positions(
    labels: torch.Tensor, size: int | None, seed: int, key: str = "dataset.train_subset"
) -> torch.Tensor:
    """Sorted positions of a seeded, class-stratified subset of at most `size` samples (all when None).

    Each class is shuffled and its members ranked by quantile (i + 0.5) / class size; the `size` lowest
    ranks are kept, so every class keeps its share of the data to within one sample.
    """
    from unlearnbench.errors import ConfigError

    num_classes, n = len(torch.unique(labels)), len(labels)
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < num_classes):
        raise ConfigError(key, size, f"an integer >= {num_classes} (one sample per class) or null")
    if size is None or size >= n:
        return torch.arange(n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    rank = torch.empty(n)
    for c in torch.unique(labels):
        members = order[labels[order] == c]
        rank[members] = (torch.arange(len(members)) + 0.5) / len(members)
    return torch.sort(torch.argsort(rank, stable=True)[:size]).values


VAL_SOURCES = ("train", "test")


def split_test(positions: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(test, val) positions: a seeded permutation of `positions`, its first `1 - fraction` test, the rest val.

    The same order as `torch.utils.data.random_split(test_set, [1 - fraction, fraction], generator seeded
    with seed)`, the NeurIPS 2023 unlearning starting kit's split of the CIFAR-10 test set (halves, seed 42)
    that ∇τ's notebooks use. Not stratified, as there.
    """
    order = torch.randperm(len(positions), generator=torch.Generator().manual_seed(seed))
    n_val = int(round(fraction * len(positions)))
    cut = len(positions) - n_val
    return torch.sort(positions[order[:cut]]).values, torch.sort(positions[order[cut:]]).values


def take(name: str, x: torch.Tensor, y: torch.Tensor, positions: torch.Tensor) -> Split:
    positions = torch.as_tensor(positions, dtype=torch.long)
    return Split(name, x[positions], y[positions], positions)


def build_splits(
    raw,
    scenario,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None = None,
    test_subset: int | None = None,
    val_source: str = "train",
) -> Splits:
    """Optionally keep stratified subsets of at most `train_subset` training and `test_subset` test images,
    carve val from the training ones (seeded, per class), then apply the forget scenario. Positions always
    refer to the dataset's full arrays.

    `val_source="test"` draws val from the test split instead (`split_test`): every training image is trained
    on (and may be forgotten), and val's positions refer to the test array.

    `raw` is a `RawDataset`; `scenario` a `Scenario`. Retain, val and test exclude forgotten classes
    (class-wise scenarios report the forgotten classes' test samples as `test_forget`).
    """
    from unlearnbench.errors import ConfigError

    _check(raw, scenario, val_fraction, val_source)
    train_pos, val_pos, test_pos = _positions(
        raw, val_fraction, split_seed, train_subset, test_subset, val_source
    )
    val_x, val_y, val_coarse = raw.train_x, raw.train_y, raw.train_coarse
    if val_source == "test":
        val_x, val_y, val_coarse = raw.test_x, raw.test_y, raw.test_coarse
    y_train = raw.train_y[train_pos]
    c_train = _at(raw.train_coarse, train_pos)
    forget = scenario.forget_mask(y_train, c_train)
    if not bool(forget.any()):
        raise ConfigError(
            "forget", scenario.describe(), "a scenario that selects at least one training sample"
        )
    keep = scenario.keep_mask(y_train, c_train)
    gone = _forgotten_classes(raw, scenario)
    gone_t = torch.tensor(gone if gone else [], dtype=torch.long)

    def remaining(y: torch.Tensor, coarse: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        """Over `positions`: the samples the scenario keeps, forgotten classes left out."""
        return scenario.keep_mask(y[positions], _at(coarse, positions)) & ~torch.isin(y[positions], gone_t)

    x_tr, y_tr = raw.train_x, raw.train_y
    splits = Splits(
        train=take("train", x_tr, y_tr, train_pos),
        forget=take("forget", x_tr, y_tr, train_pos[forget]),
        retain=take("retain", x_tr, y_tr, train_pos[~forget & keep]),
        val=take("val", val_x, val_y, val_pos[remaining(val_y, val_coarse, val_pos)]),
        test=take("test", raw.test_x, raw.test_y, test_pos[remaining(raw.test_y, raw.test_coarse, test_pos)]),
        num_classes=len(raw.classes),
        forget_classes=gone,
    )
    if gone:
        splits.test_forget = take(
            "test_forget", raw.test_x, raw.test_y, test_pos[torch.isin(raw.test_y[test_pos], gone_t)]
        )
    return splits


def _check(raw, scenario, val_fraction: float, val_source: str) -> None:
    """A one-line error for a scenario the dataset cannot run, a val_fraction outside [0, 1) or an unknown
    val_source."""
    from unlearnbench.config.checks import check_number
    from unlearnbench.errors import ConfigError

    scenario.check(len(raw.classes), raw.train_coarse is not None, raw.name)
    check_number("dataset.val_fraction", val_fraction, 0, 1, high_open=True)
    if val_source not in VAL_SOURCES:
        raise ConfigError("dataset.val_source", val_source, " or ".join(VAL_SOURCES))


def _positions(
    raw,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None,
    test_subset: int | None,
    val_source: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) positions after the subsets are kept and val is drawn; val's refer to the train
    array, or to the test array when `val_source="test"`."""
    pool = subset_positions(raw.train_y, train_subset, split_seed)
    test = subset_positions(raw.test_y, test_subset, split_seed, "dataset.test_subset")
    if val_source == "train":
        train, val = (pool[p] for p in carve_validation(raw.train_y[pool], val_fraction, split_seed))
        return train, val, test
    test, val = split_test(test, val_fraction, split_seed)
    return pool, val, test


def _at(coarse: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor | None:
    """Coarse labels at `positions`; None for a dataset without them."""
    return coarse[positions] if coarse is not None else None


def _forgotten_classes(raw, scenario) -> list[int] | None:
    """The fine classes the scenario removes entirely (a superclass's are read off the training labels)."""
    coarse_of_fine = None
    if raw.train_coarse is not None:
        coarse_of_fine = {int(f): int(c) for f, c in zip(raw.train_y.tolist(), raw.train_coarse.tolist())}
    return scenario.forgotten_classes(coarse_of_fine)


def concat(name: str, *parts: Split) -> Split:
    """Union of disjoint splits of the same source array, in source (dataset) order."""
    indices = torch.cat([p.indices for p in parts])
    order = torch.argsort(indices)
    x = torch.cat([p.x for p in parts])[order.to(parts[0].x.device)]
    y = torch.cat([p.y for p in parts])[order.to(parts[0].y.device)]
    return Split(name, x, y, indices[order])


def subset(split: Split, mask: torch.Tensor, name: str | None = None) -> Split:
    mask = mask.to(torch.bool)
    dev_mask = mask.to(split.x.device)
    return Split(
        name or split.name, split.x[dev_mask], split.y[dev_mask.to(split.y.device)], split.indices[mask.cpu()]
    )


def with_forget_subset(splits: Splits, keep: torch.Tensor) -> Splits:
    """The same run, but forgetting only the forget samples where `keep` is True (shadow experiments).

    The other forget samples join the retain set, so `train` (what the original saw) is unchanged.
    """
    forget = subset(splits.forget, keep, "forget")
    back = subset(splits.forget, ~keep.to(torch.bool), "retain")
    retain = concat("retain", splits.retain, back) if len(back) else splits.retain
    return Splits(
        train=splits.train,
        forget=forget,
        retain=retain,
        val=splits.val,
        test=splits.test,
        num_classes=splits.num_classes,
        test_forget=splits.test_forget,
        forget_classes=splits.forget_classes,
    )
