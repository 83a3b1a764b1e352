"""Recipes and config files: loading, override order, one-line errors, what config.json records,
the defaults of ``--matcher mct``, and the users' main path (CIFAR-10 with ZCA) end to end."""

from __future__ import annotations

import dataclasses
import json
import pickle
import textwrap
from pathlib import Path

import pytest
import torch

from mct_plugin.harness.cli import build_parser
from mct_plugin.harness.cli._options import resolved as resolve_command_line
from mct_plugin.harness.plugins.components import build_components

from helpers import ROOT, assert_one_line_error, run_cli, run_main
from test_platform import install_distribution, with_site


@pytest.fixture(scope="module")
def components():
    return build_components()

BENCHMARK_STUDIES = ROOT / "benchmarks" / "studies"


def resolved(components, *argv: str):
    args = build_parser(components).parse_args(["distill", *argv])
    return resolve_command_line(args, components)


def test_every_shipped_recipe_is_valid_and_listed(components, capsys):
    names = components.recipes.names()
    for expected in ("mct/cifar10-ipc1", "mct/cifar10-ipc10", "mct/cifar10-ipc50", "mct/cifar100-ipc1",
                     "mct/tiny-ipc1", "mtt/cifar10-ipc1", "mtt/cifar100-ipc1", "mtt/tiny-ipc1"):
        assert expected in names
    for name in names:
        recipe = components.recipes.get(name)
        config = resolved(components, "--recipe", name)
        assert config.recipe == name and config.recipe_version == recipe.version >= 1
        assert config.matcher == recipe.options["matcher"] and recipe.source
    listing = run_main(capsys, "recipes")
    assert listing.returncode == 0 and all(name in listing.stdout for name in names)
    shown = run_main(capsys, "recipes", "mct/cifar10-ipc1")
    assert "syn_steps: 60" in shown.stdout and "lr_init is parsed but unused" in shown.stdout


def test_every_shipped_recipe_prints_the_experts_command_of_its_buffers(components, capsys):
    """`dd-harness recipes NAME` ends with the `dd-harness experts` command of the buffers the recipe was
    made for; that command parses into exactly the recipe's expert options (dataset, model and ZCA
    those of its distillation)."""
    import shlex

    for name in components.recipes.names():
        recipe = components.recipes.get(name)
        shown = run_main(capsys, "recipes", name)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[-2] == "experts it was made for:", name
        argv = shlex.split(lines[-1])
        assert argv[:2] == ["dd-harness", "experts"]
        config = resolve_command_line(build_parser(components).parse_args(argv[1:]), components)
        expected = recipe.expert_options()
        assert {"num_experts", "train_epochs", "augmentation", "dataset", "model"} <= set(expected), name
        assert {k: getattr(config, k) for k in expected} == expected, name
        assert config.zca == recipe.options.get("zca", False) and config.buffer_path == "buffers"
    cifar = run_main(capsys, "recipes", "mtt/cifar10-ipc1").stdout.splitlines()[-1]
    assert cifar == ("  dd-harness experts --dataset CIFAR10 --model ConvNet --zca --num-experts 100 --train-epochs 50 "
                     "--augmentation dsa --buffer-path buffers")


def test_the_demo_takes_its_options_from_its_recipe(components):
    """``dd-harness demo`` is a study of the recipe with either matcher: its experts and its
    distillations are the recipe's; the command itself only chooses where files go."""
    from mct_plugin.demo import RECIPE, STUDY_FILE, DemoOptions
    from mct_plugin.harness.options import fields_of
    from mct_plugin.harness.study.spec import read_study

    entry = components.recipes.entry(RECIPE)
    assert entry.source.startswith("mct_plugin ") and entry.obj.command == "distill"
    recipe = entry.obj
    assert {"model", "ipc", "iterations", "syn_steps"} <= set(recipe.options)
    assert {"num_experts", "train_epochs", "subset"} <= set(recipe.expert_options())
    assert not set(fields_of(DemoOptions)) & (set(recipe.options) | set(recipe.expert_options()))
    study = read_study(STUDY_FILE)
    assert {arm.recipe for arm in study.arms.values()} == {RECIPE}
    assert {arm.options.get("matcher", recipe.options["matcher"]) for arm in study.arms.values()} == {"mtt", "mct"}


def test_values_come_from_defaults_then_recipe_then_config_file_then_command_line(components, tmp_path):
    config_file = tmp_path / "mine.yaml"
    config_file.write_text("syn-steps: 40\nlr_img: 5\nwaypoints: 6\n")
    config = resolved(components, "--recipe", "mct/cifar10-ipc1", "--config", str(config_file), "--syn-steps", "7")
    assert config.syn_steps == 7                        # command line over config file over recipe (60)
    assert config.lr_img == 5.0                         # config file over recipe (1000)
    assert config.plugin_options["waypoints"] == 6      # a plugin's option, from the config file
    assert config.expert_epochs == 6.0 and config.lr_lr == 1e-7  # recipe over defaults (3, 1e-5)
    assert config.batch_train == 256                    # default: nobody set it
    assert config.recipe == "mct/cifar10-ipc1" and config.recipe_version == 1
    # a --config file may name the recipe itself
    (tmp_path / "with_recipe.yaml").write_text("recipe: mct/cifar10-ipc10\nipc: 2\n")
    config = resolved(components, "--config", str(tmp_path / "with_recipe.yaml"))
    assert config.recipe == "mct/cifar10-ipc10" and config.ipc == 2 and config.expert_epochs == 15.0


@pytest.mark.parametrize("content,fragment", [
    ("syn_steps: 20\nlearning_rate: 3\n", "unknown option --learning-rate (not an option of 'dd-harness distill')"),
    ("ipc: ten\n", "--ipc must be an integer (got 'ten')"),
    ("lr_img: .nan\n", "--lr-img must be a finite number (got nan)"),
    ("- 1\n- 2\n", "must hold a mapping of option names to values"),
    ("ipc: [1\n", "is not valid YAML"),
])
def test_a_bad_config_file_fails_in_one_line_naming_it(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    proc = run_main(capsys, "distill", "--matcher", "mtt", "--config", str(path), "--out", str(tmp_path / "run"))
    assert_one_line_error(proc, fragment)
    assert not (tmp_path / "run").exists()


RECIPE_PLUGIN = textwrap.dedent('''
    from pathlib import Path
    from mct_plugin.harness.api import hookimpl, recipes_in

    @hookimpl
    def dd_register_recipes():
        return recipes_in(Path(__file__).parent / "toy_recipes")
''')


@pytest.fixture(scope="module")
def recipe_site(tmp_path_factory):
    site = install_distribution(tmp_path_factory.mktemp("site"), "toy_recipes_plugin", RECIPE_PLUGIN,
                                {"toyrecipes": "toy_recipes_plugin"})
    folder = site / "toy_recipes"
    folder.mkdir()
    (folder / "good.yaml").write_text(textwrap.dedent('''
        name: toy/fashion-ipc1
        version: 3
        description: a toy MCT run on Fashion-MNIST
        source: tests/test_recipes.py
        options:
          matcher: mct
          model: ConvNetW32
          syn_steps: 2
          expert_epochs: 1
          max_start_epoch: 2
          iterations: 2
          eval_it: 0
          waypoints: 3
    '''))
    (folder / "bad.yaml").write_text("name: toy/bad\nversion: 1\noptions:\n  matcher: mtt\n  learning_rate: 1\n")
    return site


def test_a_recipe_naming_an_unknown_option_fails_in_one_line(recipe_site, tmp_path):
    proc = run_cli("distill", "--recipe", "toy/bad", "--out", str(tmp_path / "run"), env=with_site(recipe_site))
    assert_one_line_error(proc, "recipe toy/bad", "bad.yaml", "unknown option --learning-rate")
    assert not (tmp_path / "run").exists()
    assert_one_line_error(run_cli("distill", "--recipe", "toy/nope", "--out", str(tmp_path / "run"),
                                  env=with_site(recipe_site)), "unknown recipe 'toy/nope'; registered:")


def test_config_json_records_the_recipe_and_every_resolved_value(recipe_site, tmp_path, expert_root):
    out = tmp_path / "run"
    proc = run_cli("distill", "--recipe", "toy/fashion-ipc1", "--buffer-path", str(expert_root), "--out", str(out),
                   "--lr-img", "500", "--quiet", env=with_site(recipe_site))
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "toy/fashion-ipc1" and config["recipe_version"] == 3
    assert config["lr_img"] == 500.0 and config["syn_steps"] == 2 and config["matcher"] == "mct"
    assert config["plugin_options"]["waypoints"] == 3 and config["gradient_mode"] == "unrolled"  # the mct default, resolved
    owners = config["component_options"]  # the same values under the components that read them
    assert owners["matcher:mct"]["waypoints"] == 3 and set(owners["sampler:continuous"]) == {
        "start_curriculum", "curriculum_initial", "curriculum_iterations"}
    assert "waypoints" not in owners["sampler:continuous"]
    assert config["sampler"] == "continuous" and config["batch_train"] == 256  # resolved defaults too
    assert Path(config["buffer_path"]).is_absolute() and Path(config["out"]).is_absolute()
    # the recorded config is itself a valid --config file (a re-run reproduces it)
    again = run_cli("distill", "--config", str(out / "config.json"), "--buffer-path", str(expert_root), "--out",
                    str(tmp_path / "again"), "--quiet", env=with_site(recipe_site))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "images.pt").read_bytes() == (out / "images.pt").read_bytes()


def study_options(components, name: str, arm: str) -> tuple[dict, dict]:
    """The resolved distill options (seed 0) and experts options of ``arm`` in benchmarks/studies/NAME.yaml."""
    from mct_plugin.harness.api import Study

    jobs = Study.from_file(BENCHMARK_STUDIES / f"{name}.yaml", components=components).jobs()
    distill = next(job for job in jobs if job.kind == "distill"
                   and any(label.arm == arm and label.point.get("seed") == 0 for label in job.labels))
    experts = next(job for job in jobs if job.name in distill.needs)
    return dict(distill.options), dict(experts.options)


def test_mct_defaults_are_the_study_winner_and_the_official_method_stays_a_recipe(components):
    """--matcher mct with no other option runs the configuration that won the MCT study (P=4 at the
    public spacing with its smoothing, continuous sampling, the exact gradient); the public code's
    configuration (its first-order gradient) is the named recipe mct/cifar10-ipc1, and the
    converter's defaults follow the matcher's."""
    from mct_plugin.harness.api import from_mapping
    from mct_plugin.mct.options import ConvertOptions, MatcherOptions, SamplerOptions

    winner, _ = study_options(components, "mct-ipc1", "p4-public")
    official, _ = study_options(components, "mct-ipc1", "p4-public-cm")
    config = resolved(components, "--matcher", "mct")
    matcher = components.matchers.get("mct")
    assert config.plugin_options == {}  # nothing given: each component has its own defaults
    built = {**dataclasses.asdict(from_mapping(SamplerOptions, {})), **dataclasses.asdict(from_mapping(MatcherOptions, {}))}
    for name, value in winner["plugin_options"].items():
        assert built[name] == value, name
        assert name not in dataclasses.asdict(ConvertOptions()) or getattr(ConvertOptions(), name) == value, name
    assert (config.gradient_mode or matcher.default_gradient_mode) == "auto"  # an exact mode that fits
    assert components.gradient_modes.get(winner["gradient_mode"]).exact
    assert matcher.default_sampler == "continuous"
    assert SamplerOptions().start_curriculum == "none"  # the public flag can never turn it on

    recipe = components.recipes.get("mct/cifar10-ipc1").options
    assert {name: recipe[name] for name in official["plugin_options"]} == official["plugin_options"]
    assert recipe["gradient_mode"] == official["gradient_mode"] == "first-order"
    assert official["plugin_options"] == {"waypoints": 4, "waypoint_spacing": "public", "smooth": "public",
                                          "pacing": "distance"}


@pytest.mark.parametrize("ipc", [1, 10])
@pytest.mark.parametrize("method", ["mtt", "mct"])
def test_fashion_mnist_recipes_are_the_study_settings(components, method, ipc):
    """The recipe of each method is what the MCT study ran (benchmarks/studies/mct-ipcN.yaml), but for
    the study's explicit exact gradient (the recipe's auto is exact too) and its checkpoints."""
    options, experts = study_options(components, f"mct-ipc{ipc}", "mtt" if method == "mtt" else "p4-public")
    recipe = components.recipes.get(f"{method}/fashionmnist-ipc{ipc}")
    plugin = options.pop("plugin_options")
    assert {**options, **plugin, "gradient_mode": "auto"} == {**options, **plugin, **recipe.options}
    assert options["gradient_mode"] == "unrolled" and options["checkpoint_every"] == 10
    assert (options["dataset"], options["model"], options["iterations"]) == ("FashionMNIST", "ConvNetW32",
                                                                            300 if ipc == 1 else 150)
    assert {name: experts[name] for name in recipe.expert_options()} == {
        "dataset": "FashionMNIST", "model": "ConvNetW32", "num_experts": 10, "train_epochs": 30, "subset": 20000,
        "save_interval": 5, "augmentation": "crop_scale_rotate"}
    assert components.gradient_modes.get(options["gradient_mode"]).exact


# -- CIFAR-10 with ZCA, the users' main path, on a tiny dataset in torchvision's on-disk layout ------------
def write_cifar10(root: Path, fmnist, train_per_class: int = 20, test: int = 200) -> Path:
    """``root/cifar-10-batches-py`` as torchvision's CIFAR10 reads it (pickled dicts of uint8 rows),
    filled with real Fashion-MNIST images padded to 32x32 and coloured per class."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)

    def rows(images: torch.Tensor, labels: torch.Tensor) -> dict:
        x = images.mul(0.3530).add(0.2861).clamp(0, 1)  # back to [0, 1]
        x = torch.nn.functional.pad(x, (2, 2, 2, 2))
        tint = torch.stack([0.5 + 0.5 * torch.cos(labels.float() + k) for k in range(3)], 1).view(-1, 3, 1, 1)
        rgb = (x.repeat(1, 3, 1, 1) * tint * 255).round().to(torch.uint8)
        return {"data": rgb.reshape(len(rgb), -1).numpy(), "labels": labels.tolist()}

    index = fmnist.balanced_indices(train_per_class, torch.Generator().manual_seed(0))
    train = rows(fmnist.train_images[index], fmnist.train_labels[index])
    for b in range(5):  # five training batches of the same size, as the real files
        part = slice(b * len(index) // 5, (b + 1) * len(index) // 5)
        with open(folder / f"data_batch_{b + 1}", "wb") as handle:
            pickle.dump({"data": train["data"][part], "labels": train["labels"][part]}, handle)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(rows(fmnist.test_images[:test], fmnist.test_labels[:test]), handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [f"class{c}" for c in range(10)]}, handle)
    return root


@pytest.mark.slow
def test_cifar10_with_zca_experts_convert_recipe_distill_eval(tmp_path, capsys, monkeypatch, fmnist):
    import torchvision

    root = write_cifar10(tmp_path / "data", fmnist)
    # the only shortcut: torchvision checks md5 sums of its own download, which these files cannot match
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    # kornia's ZCA fit is a 3072x3072 decomposition (most of this test): each training set is fitted
    # once, and experts, distill and eval must whiten the same training set
    from mct_plugin.harness.data import real

    fits, fit_zca = {}, real.fit_zca

    def fit_once(train: torch.Tensor):
        key = train.numpy().tobytes()
        if key not in fits:
            fits[key] = fit_zca(train)
        return fits[key]

    monkeypatch.setattr(real, "fit_zca", fit_once)
    buffers, converted, out = tmp_path / "buffers", tmp_path / "mct", tmp_path / "run"
    common = ["--dataset", "CIFAR10", "--data-path", str(root), "--model", "ConvNetW16"]
    proc = run_main(capsys, "experts", *common, "--zca", "--num-experts", "2", "--train-epochs", "3",
                    "--buffer-path", str(buffers), "--quiet")
    assert proc.returncode == 0, proc.stderr
    zca_folder = buffers / "CIFAR10" / "ConvNetW16"  # with ZCA: no _NO_ZCA suffix, as the public code
    assert sorted(p.name for p in zca_folder.iterdir()) == ["replay_buffer_0.json", "replay_buffer_0.pt"]
    proc = run_main(capsys, "convert", "--to", "mct", str(zca_folder), "--out", str(converted), "--quiet")
    assert proc.returncode == 0, proc.stderr
    from mct_plugin.mct.format import read_metadata

    meta = read_metadata(converted / "replay_buffer_0.mct.safetensors")
    assert (meta["dataset"], meta["model"], meta["waypoints"]) == ("CIFAR10", "ConvNetW16", [0, 1, 2, 3])
    proc = run_main(capsys, "distill", "--recipe", "mct/cifar10-ipc1", *common, "--zca", "--buffer-path",
                    str(converted), "--out", str(out), "--iterations", "2", "--syn-steps", "2", "--expert-epochs", "1",
                    "--max-start-epoch", "1", "--eval-it", "2", "--num-eval", "1", "--epoch-eval-train", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "mct/cifar10-ipc1" and config["zca"] and config["lr_lr"] == 1e-7
    assert config["plugin_options"]["waypoints"] == 4 and config["gradient_mode"] == "first-order"
    images = torch.load(out / "images.pt", weights_only=True)
    assert images.shape == (10, 3, 32, 32) and torch.isfinite(images).all()
    proc = run_main(capsys, "eval", "--run", str(out), "--num-eval", "1", "--epoch-eval-train", "2")
    assert proc.returncode == 0, proc.stderr
    table = json.loads((out / "eval.json").read_text())
    assert table["rows"][0]["model"] == "ConvNetW16" and 0 <= table["rows"][0]["distilled"]["mean"] <= 1
    assert len(fits) == 1  # the three commands whitened the same training images
    # without --zca the same recipe looks for CIFAR10_NO_ZCA buffers and says which folder it searched
    proc = run_main(capsys, "distill", "--recipe", "mct/cifar10-ipc1", *common, "--buffer-path", str(buffers),
                    "--out", str(tmp_path / "nozca"), "--quiet")
    assert_one_line_error(proc, "no expert buffers found", "CIFAR10_NO_ZCA")


# -- --config FILE on every command that has options ------------------------------------------------------
def config_file(path: Path, **values) -> str:
    path.write_text(json.dumps(values))  # JSON is YAML
    return str(path)


def commands_taking_a_config_file() -> set[str]:
    import argparse

    parser = build_parser(build_components())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name for name, p in sub.choices.items() if any("--config" in a.option_strings for a in p._actions)}


def test_the_readme_says_exactly_which_commands_and_options_a_config_file_sets():
    import argparse
    import re

    from mct_plugin.demo import DemoOptions
    from mct_plugin.harness.options import fields_of

    from helpers import ROOT

    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    sentence = re.search(r"`--config FILE` is accepted by ([^.]*)\.", text).group(1)
    takes, _, takes_none = sentence.partition(";")
    assert set(re.findall(r"`([a-z]+)`", takes)) == commands_taking_a_config_file() \
        == {"experts", "distill", "eval", "convert", "data", "demo"}
    assert set(re.findall(r"`([a-z]+)`", takes_none)) == {"plugins", "models", "recipes"}  # no options to set
    exceptions = re.search(r"It sets every option of the command but ([^;]*);", text).group(1)
    parser = build_parser(build_components())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in commands_taking_a_config_file():
        command_parser = sub.choices[command]
        spec = command_parser.get_default("command_options")
        settable = spec.known() if spec else set(fields_of(DemoOptions))
        for action in command_parser._actions:
            if action.option_strings and action.dest not in settable | {"help", "config"}:
                assert any(f"`{s}`" in exceptions or f"`{command} {s}`" in exceptions for s in action.option_strings), \
                    (command, action.option_strings)


@pytest.mark.parametrize("command,extra", [("experts", []), ("distill", []), ("eval", ["--run", "nowhere"]),
                                           ("convert", ["nowhere"]), ("data", []), ("demo", [])])
def test_a_config_file_naming_an_option_the_command_lacks_fails_naming_both(tmp_path, capsys, command, extra):
    path = config_file(tmp_path / "mine.yaml", frobnicate=1)
    proc = run_main(capsys, command, *extra, "--config", path)
    assert_one_line_error(proc, f"{path}: unknown option --frobnicate (not an option of 'dd-harness {command}')")


def test_every_command_with_options_takes_them_from_a_config_file(tmp_path, capsys, mini_fmnist_dir):
    """Each command run for real with its options in a --config file (the command line overrides it)."""
    buffers, converted, run = tmp_path / "buffers", tmp_path / "converted", tmp_path / "run"
    proc = run_main(capsys, "data", "--config", config_file(tmp_path / "data.yaml", data_path=str(mini_fmnist_dir)))
    assert proc.returncode == 0 and f"1000 training and 500 test images (1x28x28, 10 classes) from {mini_fmnist_dir}" \
        in proc.stdout, proc.stderr
    proc = run_main(capsys, "experts", "--config", config_file(
        tmp_path / "experts.yaml", model="ConvNetW16", num_experts=1, train_epochs=2, subset=50,
        data_path=str(mini_fmnist_dir), buffer_path=str(buffers)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert len(torch.load(buffers / "FashionMNIST" / "ConvNetW16" / "replay_buffer_0.pt", weights_only=True)[0]) == 3
    proc = run_main(capsys, "convert", str(buffers / "FashionMNIST" / "ConvNetW16"), "--config", config_file(
        tmp_path / "convert.yaml", to="mct", out=str(converted), waypoints=3, dtype="float16"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    from mct_plugin.mct.format import read_metadata

    assert read_metadata(converted / "replay_buffer_0.mct.safetensors")["waypoints_requested"] == 3
    proc = run_main(capsys, "distill", "--config", config_file(
        tmp_path / "distill.yaml", matcher="mtt", model="ConvNetW16", buffer_path=str(buffers), out=str(run),
        data_path=str(mini_fmnist_dir), iterations=1, eval_it=0, syn_steps=1, expert_epochs=1, max_start_epoch=1),
        "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = run_main(capsys, "eval", "--run", str(run), "--config", config_file(
        tmp_path / "eval.yaml", num_eval=2, epoch_eval_train=1, baseline=False), "--num-eval", "1")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((run / "eval.json").read_text())["rows"]
    assert len(rows[0]["distilled"]["accuracies"]) == 1 and rows[0]["random_subset"] is None  # command line over file
    occupied = tmp_path / "occupied"  # the demo takes minutes: its first check proves it read --out from the file
    (occupied / "config.json").parent.mkdir()
    (occupied / "config.json").write_text("{}")
    proc = run_main(capsys, "demo", "--config", config_file(tmp_path / "demo.yaml", out=str(occupied)))
    assert_one_line_error(proc, str(occupied))


# -- distill --recipe checks the buffers against the experts the recipe was made for ---------------------
def warnings_about_experts(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if "the experts in" in line]


def test_distill_recipe_warns_in_one_line_when_the_buffers_are_not_the_recipes_experts(tmp_path, capsys, expert_root,
                                                                                       expert_dir, mini_fmnist_dir):
    """The session's real buffers (ConvNetW32, 5 epochs, all of a 2000-image subset, no ZCA) against the
    study's recipes (30 epochs on a 20,000-image subset): ZCA, subset and length differ, each named once,
    in one line; converted MCT files carry the record; buffers without one get one line saying so."""
    import shutil

    quick = ["--data-path", str(mini_fmnist_dir), "--iterations", "1", "--eval-it", "0", "--syn-steps", "1",
             "--gradient-mode", "unrolled", "--quiet"]
    proc = run_main(capsys, "distill", "--recipe", "mtt/fashionmnist-ipc1", "--buffer-path", str(expert_root), "--zca",
                    "--max-start-epoch", "3", "--out", str(tmp_path / "zca"), *quick)
    assert proc.returncode == 0, proc.stderr
    assert warnings_about_experts(proc) == [
        f"dd-harness: warning: the experts in {expert_dir} are not those recipe mtt/fashionmnist-ipc1 was made for: "
        f"5 epochs (the recipe's experts train 30); subset none (the recipe: 20000); zca false (this run: true); "
        f"'dd-harness recipes mtt/fashionmnist-ipc1' shows the experts command"]

    converted = tmp_path / "converted"
    assert run_main(capsys, "convert", "--to", "mct", str(expert_dir), "--out", str(converted), "--quiet").returncode == 0
    proc = run_main(capsys, "distill", "--recipe", "mct/fashionmnist-ipc1", "--buffer-path", str(converted),
                    "--out", str(tmp_path / "short"), *quick)  # max_start_epoch 10 + expert_epochs 2 > 5 epochs
    assert proc.returncode == 0, proc.stderr
    (line,) = warnings_about_experts(proc)
    assert line.startswith(f"dd-harness: warning: the experts in {converted} are not those recipe "
                           f"mct/fashionmnist-ipc1 was made for: 5 epochs (the recipe's experts train 30); "
                           f"subset none (the recipe: 20000)"), line
    assert ("dd-harness: --max-start-epoch 10 capped at 3: start epochs 0..3, so that start + --expert-epochs 2 stays "
            "within the 5 epochs of the expert trajectories") in proc.stderr.splitlines()  # said once, by the sampler

    public = tmp_path / "public" / "FashionMNIST" / "ConvNetW32"  # as the public buffer.py leaves them: no record
    public.mkdir(parents=True)
    shutil.copy(expert_dir / "replay_buffer_0.pt", public)
    proc = run_main(capsys, "distill", "--recipe", "mtt/fashionmnist-ipc1", "--buffer-path", str(public),
                    "--max-start-epoch", "3", "--out", str(tmp_path / "public-run"), *quick)
    assert proc.returncode == 0, proc.stderr
    assert warnings_about_experts(proc) == [
        f"dd-harness: warning: the experts in {public} are not those recipe mtt/fashionmnist-ipc1 was made for: "
        f"5 epochs (the recipe's experts train 30); they record no training options (e.g. written by the public "
        f"buffer.py), so only their length was checked; 'dd-harness recipes mtt/fashionmnist-ipc1' shows the experts "
        f"command"]
