"""The interface every model implements, written down once.

A model is described in two parts:
- a `ModelSpec`: what the project knows of it without building it (name, label, config class,
  metric names, networks, how its true ELBO is evaluated). It holds no TensorFlow, so the
  scripts' `--help` and the run-directory checks read it without loading TensorFlow;
- a `Model` subclass in the model's own module: its networks, optimisers and train step.

registry.py lists the specs; nothing else keeps a table keyed by a model's name.
"""

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# The per-sample terms of every model's single-sample ELBO (the first four training metrics).
TERM_NAMES = ("log_px_given_z", "log_pz", "log_qz_given_x", "elbo")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    name: its name in config.json, in run directories and on the command line; a variant of a
        model (other settings of one script) has a name of its own.
    label: its name in figures and tables; it may name settings in braces, filled from a
        run's config by run_label (e.g. "IWAE (K={importance_samples})").
    config_class: its configs.TrainConfig subclass, whose fields generate its script's flags.
    implementation: the Model subclass, or "module:Class" so that it is imported (with
        TensorFlow) only when a model is built.
    metric_names: its training metrics, in history.csv's column order; they start with
        TERM_NAMES.
    critic_estimates: those of metric_names that a learned critic estimates rather than
        computes (drawn as estimates, never reported as true values).
    networks: the attributes saved as <name>.keras; the decoder is always one of them.
    exact_log_q: whether log q(z|x) is known in closed form. If so the true ELBO averages the
        model's own terms; if q is implicit it takes the entropy of q from a nearest-neighbour
        estimate on posterior samples (evaluation.py).
    variant_settings: the settings that make config_class describe this model rather than
        another model sharing the class: setting -> value, or AtLeast(least, default) for a
        model that any value from `least` up selects. The registry picks a config's model by
        them (registry.spec_for), and a run of the model trained with defaults gets them.
    variant_defaults: {dataset: {setting: default}}, this model's own defaults, on top of its
        config class's per-data-set ones.
    compared_by_default: whether `python compare.py` shows it without --models.
    script: the script that trains it (with variant_settings as flags), if there is one.
    """

    name: str
    label: str
    config_class: type
    implementation: Any
    metric_names: tuple = TERM_NAMES
    critic_estimates: tuple = ()
    networks: tuple = ("encoder", "decoder")
    exact_log_q: bool = True
    variant_settings: dict = field(default_factory=dict)
    variant_defaults: dict = field(default_factory=dict)
    compared_by_default: bool = True
    script: str = ""

    def default_settings(self) -> dict:
        """The settings that select this model, as a run with defaults gets them."""
        return {name: value.default if isinstance(value, AtLeast) else value
                for name, value in self.variant_settings.items()}

    def selects(self, settings: dict) -> bool:
        """Whether the settings (a dict of every setting) have each of variant_settings."""
        return all(value.matches(settings[name]) if isinstance(value, AtLeast)
                   else settings[name] == value for name, value in self.variant_settings.items())

    @property
    def extra_metric_names(self) -> tuple:
        """The training metrics after TERM_NAMES: the model's own."""
        return self.metric_names[len(TERM_NAMES):]

    def extra_metrics(self, *values) -> dict:
        """extra_metric_names -> the given values, in order, for a train step's result."""
        return dict(zip(self.extra_metric_names, values, strict=True))

    def run_label(self, config) -> str:
        """The label with its {setting} fields filled from a run's config (a dict or a config
        object); a setting the config lacks shows as '?'."""
        if dataclasses.is_dataclass(config):
            config = dataclasses.asdict(config)
        return self.label.format_map(_UnknownAsQuestionMark(config))

    def model_class(self) -> type:
        if isinstance(self.implementation, str):
            module, name = self.implementation.split(":")
            return getattr(importlib.import_module(module), name)
        return self.implementation

    def build(self, config, n_pixels: int) -> "Model":
        # The implementation is imported here, with TensorFlow, only once a model is built.
        return self.model_class()(self, config, n_pixels)


class AtLeast(NamedTuple):
    """A variant setting that any value from `least` up selects; a run of the model with
    defaults takes `default`."""
    least: int
    default: int

    def matches(self, value) -> bool:
        return value >= self.least


class _UnknownAsQuestionMark(dict):
    def __missing__(self, key):
        return "?"


class PosteriorTerms(NamedTuple):
    """Per-sample terms of the single-sample ELBO at z ~ q(z|x), each of shape [batch].

    log_qz_given_x is exact where the model has a density for q, and the critic's estimate
    where q is implicit (then the ELBO is the critic's estimate too).
    """
    log_px_given_z: Any
    log_pz: Any
    log_qz_given_x: Any
    elbo: Any                 # log p(x|z) + log p(z) - log q(z|x)


def explicit_terms(log_px_given_z, log_pz, log_qz_given_x) -> PosteriorTerms:
    """The terms of a model with a density for q, the ELBO from them."""
    return PosteriorTerms(log_px_given_z, log_pz, log_qz_given_x,
                          log_px_given_z + log_pz - log_qz_given_x)


class Model:
    """A model with a latent z of config.latent_dim D coordinates, prior N(0, I) and a
    Bernoulli decoder p(x|z).

    Subclasses build their networks and optimisers in __init__(spec, config, n_pixels), set
    latent_dim and an attribute for each name in spec.networks, and implement the methods
    below (log_q only where spec.exact_log_q). The shared
    training loop (training.py) calls train_step inside one XLA-compiled function, so every
    method must be traceable, and all randomness must come from the seeds passed in.
    """

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    @property
    def networks(self) -> dict:
        """name -> Keras model, for each network saved with the run."""
        return {name: getattr(self, name) for name in self.spec.networks}

    @property
    def optimizers(self) -> list:
        """Every optimiser whose state a resumed run needs."""
        raise NotImplementedError

    latent_dim: int

    def sample_posterior(self, x, seed):
        """One sample z ~ q(z|x) per row of x: shape [batch, D]."""
        raise NotImplementedError

    def log_q(self, x, z):
        """log q(z|x) at given z [batch, D], x [batch, pixels]: shape [batch]. Only for a model
        with a density for q (spec.exact_log_q)."""
        raise NotImplementedError

    # Whether q(z|x) is a diagonal Gaussian in closed form (gaussian_posterior gives it).
    gaussian_q = False

    def gaussian_posterior(self, x):
        """q(z|x)'s (mean, log variance) [batch, D]; only where gaussian_q."""
        raise NotImplementedError

    def terms(self, x, seed) -> PosteriorTerms:
        """The per-sample ELBO terms at one z ~ q(z|x) per row of x."""
        raise NotImplementedError

    def train_step(self, x, seed) -> dict:
        """One update on the batch x; returns metric name -> scalar for spec.metric_names."""
        raise NotImplementedError

    def evaluation_extras(self, x, seed, samples: int) -> dict:
        """Model-specific entries of metrics.json, from x [points * samples, pixels] holding
        each data point repeated `samples` times; none by default."""
        return {}


def term_means(terms: PosteriorTerms) -> dict:
    """The batch means of the terms and of the ELBO, named as in TERM_NAMES."""
    import tensorflow as tf   # here, not at the top: specs are read without TensorFlow

    return {name: tf.reduce_mean(getattr(terms, name)) for name in TERM_NAMES}
