"""The registry: the only list of models. Everything that needs to know which models exist
(the scripts, training, evaluation, compare.py, the benchmark, the tests) reads it here.

No TensorFlow here: a model's implementation is imported only when one is built.
"""

from configs import AVBConfig, VAEConfig
from model import TERM_NAMES, ModelSpec

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


def spec_for(config) -> ModelSpec:
    """The model a config describes (its model_name(), which may depend on its settings)."""
    spec = get(config.model_name())
    if not isinstance(config, spec.config_class):
        raise TypeError(f"model {spec.name!r} takes a {spec.config_class.__name__}, "
                        f"not a {type(config).__name__}")
    return spec


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
    exact_log_q=False, variant_settings={"contrast": "adaptive"}, script="train_avb.py"))
register(ModelSpec(
    name="iwae", label="IWAE (K={importance_samples})", config_class=VAEConfig,
    implementation="iwae:IWAE", metric_names=TERM_NAMES + ("iwae_bound",),
    variant_settings={"importance_samples": IWAE_DEFAULT_SAMPLES}, compared_by_default=False,
    script="train_vae.py"))
register(ModelSpec(
    name="flow", label="flow VAE", config_class=VAEConfig, implementation="flow:FlowVAE",
    variant_settings={"posterior": "flow"}, compared_by_default=False, script="train_vae.py"))
