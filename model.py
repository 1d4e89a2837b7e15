"""The interface every model implements, written down once.

A model's module declares all of it, in two parts:
- `SPECS`, its `ModelSpec`s: what the project knows of a model without building it (name,
  description, settings, the script that trains it, its defaults and conflicts, metric names,
  networks, how its true ELBO is evaluated);
- a `Model` subclass: its networks, optimisers and train step.

A model module imports TensorFlow and Keras as `lazy_module`s, which load on first use, so
that the scripts' `--help` and `--list-models` and the run-directory checks read its specs
without loading TensorFlow. registry.py lists the model modules; nothing else keeps a table
keyed by a model's name.
"""

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from configs import flag_name


class lazy_module:
    """A module imported on the first use of one of its attributes (`tf = lazy_module(
    "tensorflow")`): a model module's top level then loads no TensorFlow."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        module = importlib.import_module(self._name)
        self.__dict__.update(vars(module))     # later lookups need no import
        return getattr(module, attribute)


tf = lazy_module("tensorflow")

# The per-sample terms of every model's single-sample ELBO (the first four training metrics).
TERM_NAMES = ("log_px_given_z", "log_pz", "log_qz_given_x", "elbo")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model.

    name: its name in config.json, in run directories and on the command line (`--model NAME`);
        a variant of a model (other settings of one script) has a name of its own.
    description: what it is, in one line (`--list-models`).
    label: its name in figures and tables; it may name settings in braces, filled from a
        run's config by run_label (e.g. "IWAE (K={importance_samples})").
    config_class: its configs.TrainConfig subclass, whose fields generate its script's flags:
        a class of the model's own (a subclass of the script's class that adds fields, or any
        TrainConfig subclass), or the class it shares with the other models of its script.
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
        another model sharing the class: setting -> a value (equal values select it) or a
        rule (AtLeast, Except: any Selection). The registry picks a config's model by them
        (registry.spec_for), and a run of the model trained with defaults gets them.
    variant_defaults: {dataset: {setting: default}}, this model's own defaults, on top of its
        config class's per-data-set ones.
    conflicts: {setting: value}: settings of its config class that this model takes only at
        that value (a usage error names both otherwise).
    compared_by_default: whether `python compare.py` shows it without --models.
    script: the training script that trains it (its flags are the settings of every model of
        the script; `--model NAME` or its own settings pick it); "" for the script whose
        config class its config class derives from (registry.SCRIPTS).
    """

    name: str
    label: str
    config_class: type
    implementation: Any
    description: str = ""
    metric_names: tuple = TERM_NAMES
    critic_estimates: tuple = ()
    networks: tuple = ("encoder", "decoder")
    exact_log_q: bool = True
    variant_settings: dict = field(default_factory=dict)
    variant_defaults: dict = field(default_factory=dict)
    conflicts: dict = field(default_factory=dict)
    compared_by_default: bool = True
    script: str = ""

    def default_settings(self) -> dict:
        """The settings that select this model, as a run with defaults gets them."""
        return {name: selection(value).default for name, value in self.variant_settings.items()}

    def selects(self, settings: dict) -> bool:
        """Whether the settings (a dict of every setting) have each of variant_settings."""
        return all(selection(value).matches(settings[name])
                   for name, value in self.variant_settings.items())

    def conflict(self, settings: dict) -> str:
        """'' if the settings (a dict of every setting) keep each of conflicts, else a line
        naming the first one they break."""
        for name, value in self.conflicts.items():
            if settings[name] != value:
                selected = f" ({self.selection_text()})" if self.variant_settings else ""
                return (f"{self.name}{selected} takes {flag_name(name)} {value} only, not "
                        f"{settings[name]}")
        return ""

    def selection_text(self) -> str:
        """How its script's command line selects it, e.g. '--importance-samples >= 2'."""
        return ", ".join(selection(value).text(flag_name(name))
                         for name, value in self.variant_settings.items())

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


# Selections: the rules by which a variant setting selects a model. Each has `default` (the
# value a run of the model with defaults takes), `matches(value)` and `text(flag)`.

class Equals(NamedTuple):
    """The one value that selects the model (a plain value in variant_settings means this)."""
    default: Any

    def matches(self, value) -> bool:
        return value == self.default

    def text(self, flag: str) -> str:
        return f"{flag} {self.default}"


class AtLeast(NamedTuple):
    """Any value from `least` up selects the model."""
    least: int
    default: int

    def matches(self, value) -> bool:
        return value >= self.least

    def text(self, flag: str) -> str:
        return f"{flag} >= {self.least} (default {self.default})"


class Except(NamedTuple):
    """Any value but `other` (the setting's value for the other models) selects the model."""
    other: Any
    default: Any

    def matches(self, value) -> bool:
        return value != self.other

    def text(self, flag: str) -> str:
        return f"{flag} other than {self.other} (default {self.default})"


def selection(value):
    """A variant setting's rule: the value itself where it has one, else Equals(value)."""
    return value if callable(getattr(value, "matches", None)) else Equals(value)


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

    # Whether q(z|x), with no closed form, has an estimator of log q from mixing draws whose
    # ELBO is a lower bound rising to the true ELBO as the draws grow (a semi-implicit q;
    # elbo_bound gives it, and the final evaluation reports it).
    bounded_log_q = False

    def elbo_bound(self, x, seed, samples: int, draws: int):
        """Per row of x [N, P]: the mean over `samples` draws z ~ q(z|x) of log p(x|z) +
        log p(z) - log q_hat(z|x), log q_hat estimated from `draws` mixing draws besides z's
        own, a lower bound on the ELBO that rises to it as draws grow: shape [N]. Only where
        bounded_log_q."""
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
    return {name: tf.reduce_mean(getattr(terms, name)) for name in TERM_NAMES}
