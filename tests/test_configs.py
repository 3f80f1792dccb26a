"""Every option of every config group composes, and data-dependent fields come from the dataset."""

from __future__ import annotations

import pytest
from conftest import CONF, compose_cfg
from omegaconf import OmegaConf

from unlearnbench.config.core import build, group_options

GROUPS = [
    "dataset",
    "model",
    "recipe",
    "method",
    "forget",
    "eval",
    "trainer",
    "runtime",
    "logger",
    "paths",
    "experiment",
    "debug",
    "hparams_search",
    "launcher",
    "tuning",
]
OPTIONS = [(g, option) for g in GROUPS for option in group_options(g)]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option, tmp_path):
    overrides = [f"{group}={option}"]
    if group == "forget" and option in ("subclass", "superclass"):
        overrides.append("dataset=cifar100")
    if group == "hparams_search":
        pytest.importorskip(
            "hydra_plugins.hydra_optuna_sweeper", reason="optuna sweeper plugin not installed"
        )
    cfg = compose_cfg(overrides, tmp_path, tiny=False)  # tmp_path stands in for Hydra's run directory
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert cfg.method.name and cfg.dataset.name and cfg.model.name


def test_groups_have_options():
    for group in (
        "dataset",
        "model",
        "method",
        "forget",
        "eval",
        "trainer",
        "logger",
        "paths",
        "experiment",
        "debug",
    ):
        assert list((CONF / group).glob("*.yaml")), group


@pytest.mark.parametrize(
    ("dataset", "model"),
    [
        ("digits", "small_cnn"),
        ("synthetic", "small_cnn"),
        ("fashion_mnist", "resnet18"),
        ("cifar10", "resnet18"),
        ("cifar100", "resnet18"),
        ("svhn", "resnet18"),
        ("mnist", "resnet18"),
    ],
)
def test_dataset_names_its_default_model(dataset, model):
    assert compose_cfg([f"dataset={dataset}"]).model.name == model


def test_command_line_model_overrides_dataset_default():
    cfg = compose_cfg(["dataset=cifar10", "model=mlp"])
    assert cfg.model.name == "mlp"


def test_memorise_preset_swaps_to_resnet18_on_a_gpu():
    cfg = compose_cfg(["experiment=memorise_cifar10", "model=resnet18", "trainer=gpu"])
    assert (cfg.model.name, cfg.trainer.accelerator, cfg.dataset.train_subset) == ("resnet18", "gpu", 10000)
    assert build(cfg.model).conv1.in_channels == 3  # no MLP-only key leaks into the ResNet


def test_model_fields_are_filled_from_dataset():
    cfg = compose_cfg(["dataset=cifar100", "model=resnet18"])
    assert cfg.model.num_classes == 100 and cfg.model.in_channels == 3
    model = build(cfg.model)
    assert model.head.out_features == 100 and model.conv1.in_channels == 3


def test_mission_command_line_shape_is_valid():
    cfg = compose_cfg(["method=ga", "dataset=cifar10", "forget_ratio=0.1"])
    assert cfg.forget.ratio == 0.1 and cfg.forget.tag == "random0.1"


def test_class_scenario_tag_joins_classes():
    cfg = compose_cfg(["forget=class", "forget.classes=[0,3]"])
    assert cfg.forget.tag == "class0-3"


PRESETS = sorted((CONF / "preset").glob("*/*.yaml"))


def test_method_preset_applies_to_its_dataset_only_and_the_command_line_wins():
    on_digits = compose_cfg(["method=imu", "dataset=digits"])
    assert on_digits.method.preset == "imu/digits" and on_digits.method.lr == 0.002
    assert on_digits.method.alpha_l1 == 0.2  # keys the preset leaves alone keep the authors' value
    elsewhere = compose_cfg(["method=imu", "dataset=synthetic"])
    assert "preset" not in elsewhere.method and elsewhere.method.lr == 0.01
    assert compose_cfg(["method=imu", "dataset=digits", "method.lr=0.5"]).method.lr == 0.5
    authors = compose_cfg(["method=imu", "dataset=digits", "~preset@method"]).method
    assert "preset" not in authors and (authors.lr, authors.top_data) == (0.01, 0.1)
    assert "preset" not in compose_cfg(["method=ga", "dataset=digits"]).method


@pytest.mark.parametrize("path", PRESETS, ids=[f"{p.parent.name}/{p.stem}" for p in PRESETS])
def test_every_preset_names_a_real_method_and_dataset_and_builds(path):
    method, dataset = path.parent.name, path.stem
    assert (CONF / "method" / f"{method}.yaml").exists() and (CONF / "dataset" / f"{dataset}.yaml").exists()
    cfg = compose_cfg([f"method={method}", f"dataset={dataset}"])
    assert cfg.method.preset == f"{method}/{dataset}"
    preset = OmegaConf.load(path)
    assert all(cfg.method[k] == v for k, v in preset.items())
    build(cfg.method)  # every key the preset sets is one the method accepts


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "trainer").glob("*.yaml")))
def test_trainer_configs_are_lightning_trainer_arguments(option, tmp_path):
    """conf/trainer/*.yaml hold only `pytorch_lightning.Trainer` arguments and instantiate one directly."""
    import inspect

    import pytorch_lightning as pl
    import torch
    from hydra.utils import instantiate

    from unlearnbench import compose

    node = compose([f"trainer={option}"]).trainer
    assert node._target_ == "pytorch_lightning.Trainer"
    accepted = set(inspect.signature(pl.Trainer.__init__).parameters)
    assert set(node) - {"_target_"} <= accepted
    if node.accelerator == "gpu" and not torch.cuda.is_available():
        pytest.skip("conf/trainer/gpu.yaml builds a Trainer only where a CUDA device is visible")
    trainer = instantiate(node, default_root_dir=str(tmp_path), logger=False)
    assert isinstance(trainer, pl.Trainer)


def test_the_recipe_optimiser_and_schedule_are_configs():
    from unlearnbench import compose
    from unlearnbench.training.recipe import build_optimizer

    recipe = compose(
        [
            "recipe=cifar",
            "recipe.optimizer._target_=torch.optim.AdamW",
            "recipe.optimizer.lr=0.001",
            "~recipe.optimizer.momentum",
            "recipe.scheduler=null",
        ]
    ).recipe
    model = __import__("torch").nn.Linear(3, 2)
    optimizer, scheduler = build_optimizer(model.parameters(), OmegaConf.to_container(recipe, resolve=True))
    assert type(optimizer).__name__ == "AdamW" and optimizer.defaults["lr"] == 0.001 and scheduler is None
