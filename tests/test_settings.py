"""One place resolves a run's settings and says where each comes from (configs.resolved_sources
through registry.resolve), for the config builder and for --print-config alike."""

import dataclasses

import pytest

import configs
import registry
import sweep
import train_avb
import train_vae
from configs import AVBConfig, VAEConfig
from harness import rundir
from model import Except, ModelSpec
from tests.conftest import assert_usage_error, call_main


def test_each_value_names_its_source():
    config, sources = registry.resolve(AVBConfig, dataset="16px", contrast="adaptive",
                                       learning_rate=0.01)
    assert registry.spec_for(config).name == "avb-ac"
    assert sources["learning_rate"] == (0.01, configs.COMMAND_LINE)
    assert sources["schedule"] == ("cosine", "9px's default, which 16px takes")
    assert sources["steps"][0] == config.steps and "scaled by 16/9 points" in sources["steps"][1]
    assert sources["noise_dim"] == (AVBConfig.noise_dim, configs.CLASS_DEFAULT)
    assert set(sources) == {f.name for f in dataclasses.fields(AVBConfig)}
    assert {k: v for k, (v, _) in sources.items()} == dataclasses.asdict(config)


@pytest.mark.parametrize("model", ["vae", "iwae", "flow", "avb", "avb-ac"])
@pytest.mark.parametrize("dataset", ["4px", "9px", "16px", "digits"])
def test_the_config_is_the_one_its_sources_give(model, dataset):
    spec = registry.get(model)
    config, sources = registry.resolve(spec.config_class,
                                       **{**spec.default_settings(), "dataset": dataset})
    assert registry.spec_for(config).name == model
    assert dataclasses.asdict(config) == {k: v for k, (v, _) in sources.items()}
    assert sources["dataset"] == (dataset, configs.COMMAND_LINE)


def test_print_config_lists_every_setting_and_exits(capsys):
    with pytest.raises(SystemExit) as stop:
        train_avb.main(["--dataset", "16px", "--contrast", "adaptive", "--print-config"])
    assert stop.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "model: avb-ac (AVB+AC)"
    names = {line.split()[0] for line in out[1:]}
    assert names == {f.name for f in dataclasses.fields(AVBConfig)}
    assert any(line.startswith("contrast ") and line.endswith("command line") for line in out)


def test_print_config_writes_nothing(tmp_path, capsys):
    """(That it loads no TensorFlow: test_refusals, in a fresh Python.)"""
    ended = call_main(capsys, "train_vae.py", "--print-config", "--out", tmp_path / "run")
    assert ended.returncode == 0 and ended.stdout.startswith("model: vae")
    assert not (tmp_path / "run").exists()


# Which model a script's command line trains, and what a run is named.

def printed_model(capsys, script, *args) -> str:
    ended = call_main(capsys, script, *args, "--print-config")
    assert ended.returncode == 0, ended.stderr
    return ended.stdout.splitlines()[0]


def test_the_model_flag_picks_a_model_with_its_defaults_and_refuses_another(capsys):
    assert printed_model(capsys, "train_vae.py", "--model", "iwae") == "model: iwae (IWAE (K=8))"
    assert printed_model(capsys, "train_vae.py", "--importance-samples", "4") == \
        "model: iwae (IWAE (K=4))"
    assert printed_model(capsys, "train_avb.py", "--model", "avb-ac") == "model: avb-ac (AVB+AC)"
    made_another = call_main(capsys, "train_vae.py", "--model", "vae", "--importance-samples",
                             "4", "--print-config")
    assert_usage_error(made_another, "--importance-samples 4 make a run of iwae, not of vae")
    assert_usage_error(call_main(capsys, "train_vae.py", "--model", "avb"), "--model")


EXCEPT_ELU = ModelSpec(name="vae-elu", label="VAE (elu)", config_class=VAEConfig,
                       implementation="vae:VAE", description="the VAE with elu activations",
                       variant_settings={"activation": Except("relu", "elu")})


@pytest.fixture
def elu_variant():
    registry.register(EXCEPT_ELU)
    yield EXCEPT_ELU
    registry.unregister(EXCEPT_ELU.name)


def test_a_variant_is_selected_by_any_value_but_one(elu_variant, capsys):
    assert printed_model(capsys, "train_vae.py", "--activation", "elu") == \
        "model: vae-elu (VAE (elu))"
    assert printed_model(capsys, "train_vae.py") == "model: vae (VAE)"
    assert registry.default_config("vae-elu").activation == "elu"
    listed = call_main(capsys, "train_vae.py", "--list-models").stdout
    assert "train_vae.py --model vae-elu, or --activation other than relu (default elu)" in listed
    help_ = registry.build_parser("train_vae.py", "")._option_string_actions["--activation"].help
    assert help_.endswith("(default: relu; elu for vae-elu)")


def test_default_run_names_carry_every_setting_that_differs_from_the_models_defaults():
    def name(model, **settings):
        return rundir.run_dir(registry.default_config(model, **settings)).name
    assert name("vae") == "vae-4px-seed0"
    assert name("iwae", dataset="9px", seed=2) == "iwae-9px-seed2"         # K = 8, its default
    assert name("iwae", importance_samples=16) == "iwae-4px-importance_samples=16-seed0"
    assert name("avb", dataset="9px", learning_rate=1e-4, noise_dim=4) == \
        "avb-9px-learning_rate=0.0001-noise_dim=4-seed0"
    assert name("avb-ac", dataset="9px", schedule="cosine") == "avb-ac-9px-seed0"  # its default
    assert name("vae", latent_dim=8, binarisation="dynamic", dataset="digits") == \
        "vae-digits-binarisation=dynamic-latent_dim=8-seed0"
    # The run's length (--resume may raise it) and where its files are do not name it.
    assert name("vae", steps=10, data_file="/data/mnist.npz") == "vae-4px-seed0"


def test_an_older_config_reads_the_settings_it_lacks_at_what_made_it():
    record = {"model": "vae", "dataset": "4px", "seed": 0}
    read = configs.settings_of_record(VAEConfig, record)
    assert read["flow_layers"] == VAEConfig.flow_layers and read["latent_dim"] == 2
    assert read["ais_start"] == configs.OLDER_DEFAULTS["ais_start"] == "prior"
    assert set(read) == {*record, *(f.name for f in dataclasses.fields(VAEConfig))}


def test_a_sweep_takes_a_selecting_setting_but_never_turns_a_model_into_another(capsys):
    parser = sweep.build_parser()
    swept = sweep.sweep_from_args(parser, ["--models", "iwae", "--datasets", "4px", "--seeds",
                                           "0", "--grid", "importance_samples=4,16"])
    assert [p.path.name for p in sweep.plan_runs(swept)] == [
        "iwae-4px-importance_samples=4-seed0", "iwae-4px-importance_samples=16-seed0"]
    refused = call_main(capsys, "sweep.py", "--models", "vae", "--grid",
                        "importance_samples=1,4")
    assert_usage_error(refused, "vae 4px importance_samples=4 seed 0",
                       "make a run of iwae, not of vae")


@pytest.mark.parametrize("value, accepted", [("0", True), ("0.1", True), ("-0.1", False),
                                             ("inf", False), ("nan", False), ("x", False)])
def test_weight_decay_takes_zero_or_more_and_refuses_the_rest(capsys, value, accepted):
    with pytest.raises(SystemExit) as stop:
        train_vae.main(["--dataset", "4px", "--weight-decay", value, "--print-config"])
    assert (stop.value.code == 0) == accepted
    if not accepted:
        assert "expected a non-negative" in capsys.readouterr().err
