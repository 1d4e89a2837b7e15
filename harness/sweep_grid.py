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
    """Whether a grid setting is one of the model's settings, and not one that selects a
    model (so no grid value turns the model into another)."""
    spec = registry.get(model)
    fields = {f.name for f in dataclasses.fields(spec.config_class)}
    selecting = {setting for other in registry.names() for setting in
                 registry.get(other).variant_settings
                 if registry.get(other).config_class is spec.config_class}
    return name in fields and name not in selecting


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
    return [f"--grid {name} does not apply to {registry.get(model).label}; its runs use "
            "its default" for name in grid for model in models
            if not applies(name, model)]
