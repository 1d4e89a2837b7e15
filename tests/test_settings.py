"""One place resolves a run's settings and says where each comes from (configs.resolved_sources
through registry.resolve), for the config builder and for --print-config alike."""

import dataclasses

import pytest

import configs
import registry
import train_avb
from configs import AVBConfig
from tests.conftest import call_main


def test_each_value_names_its_source():
    config, sources = registry.resolve(AVBConfig, dataset="16px", contrast="adaptive",
                                       learning_rate=0.01)
    assert registry.spec_for(config).name == "avb-ac"
    assert sources["learning_rate"] == (0.01, configs.COMMAND_LINE)
    assert sources["schedule"] == ("cosine", "avb-ac's default on 9px, which 16px takes")
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
