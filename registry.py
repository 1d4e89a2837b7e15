"""The registry: the only list of models. Everything that needs to know which models exist
(the scripts, training, evaluation, compare.py, the benchmark, the tests) reads it here.

No TensorFlow here: a model's implementation is imported only when one is built.
"""

import dataclasses

import configs
from configs import AVBConfig, VAEConfig
from model import TERM_NAMES, AtLeast, ModelSpec

ADVERSARY_METRICS = ("adversary_loss", "adversary_accuracy")
IWAE_DEFAULT_SAMPLES = 8       # K of an IWAE run that compare.py trains; see README
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


def unregister(name: str) -> None:
    _MODELS.pop(name, None)


def names() -> tuple:
    return tuple(_MODELS)


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
    model)."""
    matching = [spec for spec in _MODELS.values()
                if spec.config_class is config_class and spec.selects(settings)]
    if not matching:
        raise UnknownModel(f"no registered model takes a {config_class.__name__} with these "
                           "settings")
    most = max(len(spec.variant_settings) for spec in matching)
    best = [spec for spec in matching if len(spec.variant_settings) == most]
    if len(best) > 1:
        raise AmbiguousSettings("these settings describe several models: " + "; ".join(
            f"{spec.name} ({', '.join(spec.variant_settings)})" for spec in best))
    return best[0]


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


def default_config(name: str, **settings):
    """The config of a run of the named model: the given settings, else its defaults."""
    spec = get(name)
    return make_config(spec.config_class, **{**spec.default_settings(), **settings})


def build_parser(config_class, description: str):
    """The flags of config_class, their help naming the defaults of each model it trains."""
    variants = {spec.name: spec.variant_defaults for spec in _MODELS.values()
                if spec.config_class is config_class and spec.variant_defaults}
    return configs.build_parser(config_class, description, variants)


def colour(name: str) -> str:
    """A model's colour in every figure, by its place in the registry."""
    return COLOURS[names().index(name) % len(COLOURS)]


register(ModelSpec(
    name="vae", label="VAE", config_class=VAEConfig, implementation="vae:VAE",
    script="train_vae.py"))
register(ModelSpec(
    name="avb", label="AVB", config_class=AVBConfig, implementation="avb:AVB",
    metric_names=TERM_NAMES + ADVERSARY_METRICS, critic_estimates=("log_qz_given_x", "elbo"),
    networks=("encoder", "decoder", "adversary"), exact_log_q=False, script="train_avb.py"))
register(ModelSpec(
    name="avb-ac", label="AVB+AC", config_class=AVBConfig,
    implementation="avb:AdaptiveContrastAVB", metric_names=TERM_NAMES + ADVERSARY_METRICS,
    critic_estimates=("log_qz_given_x", "elbo"), networks=("encoder", "decoder", "adversary"),
    exact_log_q=False, variant_settings={"contrast": "adaptive"},
    # chosen by true ELBO over seeds 0-2 and by cost (README, "Robustness maps")
    variant_defaults={"4px": {"learning_rate": 5e-4}, "9px": {"schedule": "cosine"}},
    script="train_avb.py"))
register(ModelSpec(
    name="iwae", label="IWAE (K={importance_samples})", config_class=VAEConfig,
    implementation="iwae:IWAE", metric_names=TERM_NAMES + ("iwae_bound",),
    variant_settings={"importance_samples": AtLeast(2, IWAE_DEFAULT_SAMPLES)},
    variant_defaults={"4px": {"batch_size": 128}, "9px": {"batch_size": 128}},
    compared_by_default=False, script="train_vae.py"))
register(ModelSpec(
    name="flow", label="flow VAE", config_class=VAEConfig, implementation="flow:FlowVAE",
    variant_settings={"posterior": "flow"}, variant_defaults={"9px": {"steps": 12000}},
    compared_by_default=False, script="train_vae.py"))
