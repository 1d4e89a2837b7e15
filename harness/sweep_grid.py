"""A sweep's grid: --grid SETTING=V1,V2,... read and checked against the settings of the models
swept, each value as the setting's own flag reads it; which grid settings apply to which model.
"""

import argparse
import dataclasses

import registry
from configs import parse_setting

SWEPT_BY_OWN_FLAG = ("dataset", "seed", "out")   # not --grid settings


def grid_item(text: str) -> tuple:
    """--grid SETTING=V1,V2,...: (setting, [texts]); the values are checked later, against
    the settings of the models swept."""
    name, equals, values = text.partition("=")
    texts = [v for v in values.split(",") if v]
    if not equals or not name or not texts:
        raise argparse.ArgumentTypeError(f"{text!r}: expected SETTING=VALUE[,VALUE...]")
    return name.replace("-", "_"), texts


def applies(name: str, model: str) -> bool:
    """Whether a grid setting is one of the model's settings (one that selects a model
    included: a value that would make the run another model's is refused, check_models)."""
    return name in {f.name for f in dataclasses.fields(registry.get(model).config_class)}


def check_models(plans, steps, data_file: str = "") -> None:
    """ValueError (one line) if a planned run's grid values make it a run of a model other
    than its own (e.g. importance_samples=4 for the vae, which is the iwae)."""
    for plan in plans:
        try:
            plan.config(steps, data_file)
        except ValueError as error:
            raise ValueError(f"--grid: {plan.describe()}: {error}; sweep that model instead")


def parse_grid(items: list, models: tuple) -> dict:
    """setting -> tuple of values, each read as the setting's flag reads it; ValueError with a
    one-line message for a setting no model has or a value its flag refuses."""
    grid = {}
    for name, texts in items:
        owners = [m for m in models if applies(name, m)]
        if name in SWEPT_BY_OWN_FLAG or not owners:
            raise ValueError(f"--grid {name}: not a setting of {', '.join(models)}"
                             + (f" (use --{name}s)" if name in ("dataset", "seed") else ""))
        config_class = registry.get(owners[0]).config_class
        f = next(f for f in dataclasses.fields(config_class) if f.name == name)
        try:
            grid[name] = tuple(dict.fromkeys(parse_setting(f, t) for t in texts))
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"--grid {name}: {error}")
    return grid


def skipped_settings(grid: dict, models: tuple) -> list:
    """'setting: not a setting of MODEL' for each grid setting a model runs without."""
    return [f"--grid {name} does not apply to {model}; its runs use "
            "its default" for name in grid for model in models
            if not applies(name, model)]
