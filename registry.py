"""The registry: the only list of models. Everything that needs to know which models exist
(the scripts, training, evaluation, compare.py, the benchmark, the tests) reads it here.

Each model module declares its models (`SPECS`, model.py); MODEL_MODULES lists the modules.
Adding a model is one module and its name there. The model modules load TensorFlow only when
a model is built, so reading the registry (`--help`, `--list-models`) loads none.
"""

import argparse
import dataclasses
import importlib

import configs
from configs import AVBConfig, VAEConfig, flag_name
from model import TERM_NAMES, ModelSpec

MODEL_MODULES = ("vae", "avb", "iwae", "flow", "sivi")   # registered in this order
# The training scripts, each with the config class whose models it trains by default: a
# model whose config class derives from one of them is trained by that script.
SCRIPTS = {"train_vae.py": VAEConfig, "train_avb.py": AVBConfig}
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:olive", "tab:cyan", "tab:gray")

_MODELS: dict = {}


class UnknownModel(KeyError):
    """A model name that is not registered."""

    def __str__(self):
        return self.args[0]


def register(spec: ModelSpec) -> ModelSpec:
    """Adds a model; its name must be new. Returns the spec."""
    if spec.name in _MODELS:
        raise ValueError(f"a model named {spec.name!r} is registered already")
    missing = [name for name in TERM_NAMES if name not in spec.metric_names]
    if missing or "decoder" not in spec.networks:
        raise ValueError(f"model {spec.name!r}: metric_names must hold {', '.join(TERM_NAMES)} "
                         "and networks must hold the decoder")
    _MODELS[spec.name] = spec
    return spec


def register_modules(modules=MODEL_MODULES) -> None:
    """Registers the SPECS of each model module (those registered already stay)."""
    for module in modules:
        for spec in importlib.import_module(module).SPECS:
            if _MODELS.get(spec.name) is not spec:
                register(spec)


def module_of(spec: ModelSpec) -> str:
    """The module that declares a model (its implementation's): what another process (a Ray
    worker) imports to register it."""
    if isinstance(spec.implementation, str):
        return spec.implementation.split(":")[0]
    return spec.implementation.__module__


def unregister(name: str) -> None:
    _MODELS.pop(name, None)


def names() -> tuple:
    return tuple(_MODELS)


def specs() -> tuple:
    return tuple(_MODELS.values())


def get(name: str) -> ModelSpec:
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModel(f"unknown model {name!r}; registered: {', '.join(_MODELS)}")


class AmbiguousSettings(ValueError):
    """Settings that describe more than one registered model."""


def spec_of_settings(config_class, settings: dict) -> ModelSpec:
    """The model that settings (a dict of every field of config_class) describe: of the models
    with that config class, the one whose variant_settings they have, the one with the most
    variant settings where several have theirs (a model without any is the class's plain
    model). ValueError naming its conflict where that model's conflicts the settings break."""
    matching = [spec for spec in _MODELS.values()
                if spec.config_class is config_class and spec.selects(settings)]
    if not matching:
        raise UnknownModel(f"no registered model takes a {config_class.__name__} with these "
                           "settings")
    most = max(len(spec.variant_settings) for spec in matching)
    best = [spec for spec in matching if len(spec.variant_settings) == most]
    allowed = [spec for spec in best if not spec.conflict(settings)]
    if not allowed:
        raise ValueError(best[0].conflict(settings))
    if len(allowed) > 1:
        raise AmbiguousSettings("these settings describe several models: " + "; ".join(
            f"{spec.name} ({', '.join(spec.variant_settings)})" for spec in allowed))
    return allowed[0]


def spec_for(config) -> ModelSpec:
    """The model a config describes, from its class and its settings."""
    return spec_of_settings(type(config), dataclasses.asdict(config))


def resolve(config_class, **settings) -> tuple:
    """(config, {setting: (value, source)}) from the given settings: unset ones take the
    default of the model they select on the data set, else the data set's default, else the
    class default (configs.resolved_sources). The model is the one the settings select with
    the data set's defaults alone."""
    first = configs.resolved_sources(config_class, settings)
    spec = spec_for(config_class(**{k: v for k, (v, _) in first.items()}))
    sources = configs.resolved_sources(config_class, settings, spec.variant_defaults,
                                       spec.name)
    return config_class(**{k: v for k, (v, _) in sources.items()}), sources


def make_config(config_class, **settings):
    """A config from the given settings; unset ones take their defaults (resolve)."""
    return resolve(config_class, **settings)[0]


def resolve_model(name: str, **settings) -> tuple:
    """resolve for a run of the named model: unset settings that select it take its defaults.
    ValueError if the settings given make it another model."""
    spec = get(name)
    config, sources = resolve(spec.config_class, **{**spec.default_settings(), **settings})
    made = spec_for(config)
    if made is not spec:
        given = ", ".join(f"{flag_name(k)} {v}" for k, v in settings.items()
                          if k in made.variant_settings) or "these settings"
        raise ValueError(f"{given} make a run of {made.name}, not of {name}")
    return config, sources


def default_config(name: str, **settings):
    """The config of a run of the named model: the given settings, else its defaults."""
    return resolve_model(name, **settings)[0]


def default_settings(name: str, dataset: str) -> dict:
    """Every setting of a run of the named model on dataset with its defaults."""
    return dataclasses.asdict(default_config(name, dataset=dataset))


def row_label(name: str, dataset: str, settings: dict) -> str:
    """The named model's label for a row of a table of runs on dataset: the settings its
    label names (the IWAE's K) from the given ones (a sweep's grid), else its defaults. A
    setting given as '' (a summary's cell for a setting the model runs without) is skipped."""
    given = {k: v for k, v in settings.items() if v != ""}
    return get(name).run_label({**default_settings(name, dataset), **given})


# The training scripts.

def script_of(spec: ModelSpec) -> str:
    """The script that trains a model ('' if none does)."""
    return spec.script or next((script for script, config_class in SCRIPTS.items()
                                if issubclass(spec.config_class, config_class)), "")


def family(script: str) -> tuple:
    """The models a training script trains, in the registry's order."""
    return tuple(spec for spec in _MODELS.values() if script_of(spec) == script)


def family_classes(script: str) -> tuple:
    """The config classes of a script's models: its own class first."""
    return tuple(dict.fromkeys([SCRIPTS[script], *(spec.config_class
                                                   for spec in family(script))]))


def foreign_flags(spec: ModelSpec, given: dict) -> list:
    """The flags of the settings given that the model's config class lacks."""
    fields = {f.name for f in dataclasses.fields(spec.config_class)}
    return [flag_name(name) for name in given if name not in fields]


def resolve_script(script: str, given: dict, model: str | None = None) -> tuple:
    """(config, sources) of a run a training script's command line describes: of the model
    named (--model), else of the model the settings given select among the script's models:
    those of the script's own config class where it admits the settings (configs.admits),
    else of the one class that does (a model's own class: that model, with its defaults).
    ValueError (one line) if no model or several fit."""
    if model is not None:
        spec = get(model)
        if spec not in family(script):
            raise UnknownModel(f"--model {model}: {script} trains "
                               f"{', '.join(s.name for s in family(script))}")
        foreign = foreign_flags(spec, given)
        if foreign:
            raise ValueError(f"{', '.join(foreign)}: not a setting of {model}")
        return resolve_model(model, **given)
    fitting = [c for c in family_classes(script) if configs.admits(c, given)]
    roots = ([SCRIPTS[script]] if SCRIPTS[script] in fitting else
             [c for c in fitting if not any(o is not c and issubclass(c, o) for o in fitting)])
    if not roots:
        raise ValueError(f"no model of {script} takes all of " + ", ".join(
            f"{flag_name(k)} {v}" for k, v in given.items()))
    if len(roots) > 1:
        raise AmbiguousSettings(
            "these settings fit several models (" + ", ".join(
                s.name for s in family(script) if s.config_class in roots) + "); pass --model")
    owners = [spec for spec in family(script) if spec.config_class is roots[0]]
    if roots[0] is not SCRIPTS[script] and len(owners) == 1:
        return resolve_model(owners[0].name, **given)
    return resolve(roots[0], **given)


def build_parser(script: str, description: str):
    """The flags of every setting of a script's models (their help naming each model's own
    defaults), --model and --list-models."""
    variants = {spec.name: spec.variant_defaults for spec in family(script)
                if spec.variant_defaults}
    selected = {spec.name: spec.default_settings() for spec in family(script)
                if spec.variant_settings}
    parser = configs.build_parser(family_classes(script), description, variants, selected)
    names = [spec.name for spec in family(script)]
    parser.add_argument("--model", choices=names, help="the model to train, of: "
                        f"{', '.join(names)} (default: the one the settings given select; "
                        "see --list-models)")
    parser.add_argument("--list-models", action=ListModels, specs=lambda: family(script),
                        help="list the models this script trains, what each is and the "
                             "settings that select it, and exit")
    return parser


class ListModels(argparse.Action):
    """--list-models: prints listing(specs()) and exits, as --help does."""

    def __init__(self, option_strings, dest, specs, **kwargs):
        super().__init__(option_strings, dest, **{**kwargs, "nargs": 0,
                                                  "default": argparse.SUPPRESS})
        self.specs = specs

    def __call__(self, parser, namespace, values, option_string=None):
        print(listing(self.specs()))
        parser.exit(0)


def selection_text(spec: ModelSpec) -> str:
    """How a command line selects a model: its script with --model NAME, or with its variant
    settings or its own settings (those its config class adds to the script's), or with
    none (the script's default model)."""
    script = script_of(spec)
    if not script:
        return "no script trains it"
    base = {f.name for f in dataclasses.fields(SCRIPTS[script])} if script in SCRIPTS else set()
    own = [flag_name(f.name) for f in dataclasses.fields(spec.config_class) if f.name not in base]
    how = "; ".join(filter(None, [spec.selection_text(),
                                  own and f"its own settings {', '.join(own)}"]))
    return f"{script} --model {spec.name}" + (f", or {how}" if how else ", or no flag")


def listing(specs) -> str:
    """Two lines per model: its name and what it is, then how a command line selects it."""
    width = max(len(spec.name) for spec in specs)
    return "\n".join(f"{spec.name:<{width}}  {spec.description or spec.label}\n"
                     f"{'':<{width}}  {selection_text(spec)}" for spec in specs)


def colour(name: str) -> str:
    """A model's colour in every figure, by its place in the registry."""
    return COLOURS[names().index(name) % len(COLOURS)]


register_modules()
