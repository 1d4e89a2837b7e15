"""The layout's promises: a data set of another kind defined entirely in this file trains,
evaluates and is compared with no edit to another file; run states decided in one place;
imports that point one way; no module but the registry and the models' own naming a model."""

import ast
import csv
import dataclasses
import json
import re

import numpy as np
import pytest

import compare
import data
import registry
from harness import rundir
from configs import VAEConfig
from tests.conftest import PACKAGES, ROOT, SCRIPTS, project_modules

# Every 1 x 2 binary image, one data point each: a uniform model reaches -log 4.
TWO_PIXEL_IMAGES = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TWO_PIXELS = data.DatasetKind(
    description="two-pixel (every 1 x 2 binary image)",
    claims=lambda name: name == "two-pixel",
    load=lambda name, options: data.Dataset(name, TWO_PIXEL_IMAGES, (1, 2), -float(np.log(4))),
    n_points=lambda name: len(TWO_PIXEL_IMAGES))
STEPS = 200


@pytest.fixture
def two_pixel_kind():
    data.register_kind(TWO_PIXELS)
    yield TWO_PIXELS
    data.unregister_kind(TWO_PIXELS)


@pytest.mark.slow
def test_a_data_set_of_another_kind_trains_evaluates_and_is_compared(two_pixel_kind, tmp_path,
                                                                     capsys):
    compare.main(["--runs-root", str(tmp_path), "--dataset", "two-pixel", "--models", "vae",
                  "--train-steps", str(STEPS)])
    out = capsys.readouterr().out
    run = rundir.read_run(tmp_path / "vae-two-pixel-seed0")
    assert f"{run.path} is missing: training VAE on two-pixel" in out
    assert run.config["n_points"] == 4 and run.config["image_shape"] == [1, 2]
    assert run.posterior["z"].shape[1] == 4 and run.posterior["reconstructions"].shape[2] == 2
    assert run.metrics["optimum_log_px"] == pytest.approx(-np.log(4))
    assert len(run.metrics["log_px_per_point"]) == 4
    # A log-likelihood is at most the optimum, and the VAE's exact ELBO lies below it.
    assert run.metrics["log_px"] <= run.metrics["optimum_log_px"] + 1e-4
    assert run.metrics["elbo"] <= run.metrics["log_px"] + 1e-2
    with open(tmp_path / "compare-two-pixel" / "results.csv", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["model"] == "VAE" and row["dataset"] == "two-pixel"
    for name in ("metrics.png", "latent-vae.png", "latent-vae.gif", "results.md"):
        assert (tmp_path / "compare-two-pixel" / name).stat().st_size > 0


def test_an_unknown_name_lists_every_kind(two_pixel_kind):
    with pytest.raises(ValueError, match="expected Npx .*; or two-pixel"):
        data.check_name("three-pixel")


def fake_run(path, step, metrics=False, **settings):
    path.mkdir(parents=True)
    rundir.write_json(path / rundir.CONFIG_FILE, {
        "model": "vae", **dataclasses.asdict(VAEConfig(**settings)), "n_points": 4,
        "image_shape": [2, 2]})
    if step is not None:
        rundir.write_state(path, [], step)
    if metrics:
        rundir.write_metrics(path, {"steps": step})


def test_run_states(tmp_path):
    config = registry.make_config(VAEConfig, steps=30, out=str(tmp_path / "x"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    fake_run(tmp_path / "unsaved", None)
    fake_run(tmp_path / "unfinished", 10, steps=30)
    fake_run(tmp_path / "finished", 30, metrics=True, steps=30)
    fake_run(tmp_path / "evaluated-earlier", 20, metrics=True, steps=30)
    fake_run(tmp_path / "beyond", 40, metrics=True, steps=40)
    fake_run(tmp_path / "other-rate", 10, steps=30, learning_rate=1.0)
    kinds = {name: rundir.run_state(tmp_path / name, config).kind for name in (
        "missing", "other", "unsaved", "unfinished", "finished", "evaluated-earlier",
        "beyond", "other-rate")}
    assert kinds == {"missing": rundir.NEW, "other": rundir.NOT_A_RUN,
                     "unsaved": rundir.UNSAVED, "unfinished": rundir.UNFINISHED,
                     "finished": rundir.FINISHED, "evaluated-earlier": rundir.UNFINISHED,
                     "beyond": rundir.OTHER_SETTINGS, "other-rate": rundir.OTHER_SETTINGS}
    assert rundir.run_state(tmp_path / "beyond", config).reason == "steps: 40 -> 30"
    assert "learning_rate: 1.0 -> 0.003" in rundir.run_state(tmp_path / "other-rate",
                                                             config).reason
    assert rundir.run_state(tmp_path / "finished", model="avb").kind == rundir.OTHER_SETTINGS
    assert rundir.run_state(tmp_path / "beyond").kind == rundir.FINISHED   # no steps asked
    with rundir.writing(tmp_path / "finished"):
        assert rundir.run_state(tmp_path / "finished", config).kind == rundir.FINISHED


def project_imports() -> dict:
    """module -> [(project module it imports, inside a function?, source line)], where
    `from package import module` counts as importing package.module."""
    modules = project_modules()
    imports = {}
    for name, path in modules.items():
        source = path.read_text()
        lines, found = source.splitlines(), []
        for function in [None, *(n for n in ast.walk(ast.parse(source))
                                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]:
            nodes = ast.parse(source).body if function is None else ast.walk(function)
            for node in nodes:
                targets = ([a.name for a in node.names] if isinstance(node, ast.Import)
                           else [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                           if isinstance(node, ast.ImportFrom) and node.module else [])
                found += [(t, function is not None, lines[node.lineno - 1])
                          for t in targets if t in modules and t != name
                          and not name.startswith(f"{t}.")]
        imports[name] = found
    return imports


def test_the_top_level_holds_the_scripts_and_the_research_only():
    top = sorted(p.stem for p in ROOT.glob("*.py"))
    assert len(top) <= 16, top
    assert set(SCRIPTS) <= set(top)
    assert not set(top) & {"training", "rundir", "evaluation", "plots", "tables", "ais"}, top


def test_every_package_says_what_it_holds():
    for package in PACKAGES:
        init = ROOT.joinpath(*package.split("."), "__init__.py")
        assert ast.get_docstring(ast.parse(init.read_text())), package


def test_no_module_in_a_package_imports_a_script():
    offending = [(m, t) for m, found in project_imports().items() if "." in m
                 for t, _, _ in found if t in SCRIPTS]
    assert offending == []


def test_nothing_edits_the_import_path():
    edits = [name for name, path in project_modules().items()
             if "sys.path" in path.read_text()]
    assert edits == []


def test_imports_point_one_way():
    graph = {m: {t for t, _, _ in found} for m, found in project_imports().items()}

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n)))
                   for n in graph[start])
    assert [m for m in graph if reaches(m, m)] == []


def test_a_project_import_inside_a_function_keeps_tensorflow_out_and_says_so():
    inside = [(m, line.strip()) for m, found in project_imports().items()
              for _, in_function, line in found if in_function]
    assert inside and all("TensorFlow" in line for _, line in inside), inside


MODEL_NAMED = re.compile(r"""["'](%s)["']""" % "|".join(map(re.escape, registry.names())))
# The --posterior choice 'flow' is a setting's value, which the registry maps to the flow model.
SETTING_VALUES = ('POSTERIORS = ("gaussian", "flow")',)


def test_only_the_registry_and_the_models_name_a_model():
    paths = project_modules()
    modules = ["configs", "compare", "sweep", "data",
               *(m for m in paths if m.split(".")[0] in ("harness", "figures"))]
    named = [f"{m}: {line.strip()}" for m in modules
             for line in paths[m].read_text().splitlines()
             if MODEL_NAMED.search(line) and line.strip() not in SETTING_VALUES]
    assert named == []
