"""Gradient modes: unrolled vs finite differences, checkpointed vs unrolled (every model family),
first-order vs the terms it keeps, memory, and the automatic choice."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from mct_plugin.harness.augment import DifferentiableAugmentation
from mct_plugin.harness.distill.gradient_modes import (Checkpointed, FirstOrder, StudentProblem, Unrolled,
                                                        step_inputs)
from mct_plugin.harness.distill.memory import choose_exact_mode, parse_bytes, step_graph_bytes
from mct_plugin.harness.distill.mode_options import CheckpointedOptions
from mct_plugin.harness.errors import ConfigError
from mct_plugin.harness.distill.matching import normalised_distance
from mct_plugin.harness.models import FunctionalModel

from helpers import components
from mct_plugin.harness.models.convnet import ConvNet, ConvNetConfig

def checkpointed(interval: int = 0, **kwargs) -> Checkpointed:
    """The checkpointed mode with its option ``checkpoint_interval`` (0: automatic)."""
    return Checkpointed(CheckpointedOptions(checkpoint_interval=interval), **kwargs)


def tiny_problem(syn_steps=3, lr=0.05, augment=None, soft=False):
    torch.manual_seed(0)
    module = ConvNet(1, 3, (8, 8), ConvNetConfig(width=4, depth=1)).double()
    model = FunctionalModel(module)
    start = model.initial_flat()
    target = start + 0.05 * torch.randn_like(start)
    images = torch.randn(6, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.arange(3).repeat_interleave(2)
    if soft:
        labels = torch.softmax(torch.randn(6, 3, dtype=torch.float64), dim=1)
    alpha = torch.tensor(lr, dtype=torch.float64, requires_grad=True)
    return StudentProblem(model, start, lambda theta: normalised_distance(theta, start, target), images, labels,
                          alpha, syn_steps, batch_syn=3, augment=augment)


def loss_at(problem, images=None, lr=None):
    p = StudentProblem(**{**problem.__dict__, "images": images if images is not None else problem.images,
                          "lr": lr if lr is not None else problem.lr})
    with torch.enable_grad():
        return Unrolled().run(p).loss


@pytest.mark.parametrize("augment", [None, "color_scale_rotate"])
def test_unrolled_gradient_matches_finite_differences(augment):
    aug = DifferentiableAugmentation((8, 8), augment).double() if augment else None
    problem = tiny_problem(augment=aug)
    result = Unrolled().run(problem)
    eps = 1e-6
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        index = tuple(int(torch.randint(0, n, (1,), generator=generator)) for n in problem.images.shape)
        plus, minus = problem.images.detach().clone(), problem.images.detach().clone()
        plus[index] += eps
        minus[index] -= eps
        numeric = (loss_at(problem, plus.requires_grad_()) - loss_at(problem, minus.requires_grad_())) / (2 * eps)
        assert numeric == pytest.approx(float(result.images_grad[index]), rel=1e-4, abs=1e-9)
    lr = float(problem.lr.detach())
    numeric_lr = (loss_at(problem, lr=torch.tensor(lr + eps, dtype=torch.float64, requires_grad=True))
                  - loss_at(problem, lr=torch.tensor(lr - eps, dtype=torch.float64, requires_grad=True))) / (2 * eps)
    assert numeric_lr == pytest.approx(float(result.lr_grad), rel=1e-5)


def test_first_order_equals_unrolled_for_one_step():
    problem = tiny_problem(syn_steps=1)
    exact, tesla = Unrolled().run(problem), FirstOrder().run(problem)
    assert tesla.loss == pytest.approx(exact.loss, rel=1e-12)
    assert torch.allclose(tesla.images_grad, exact.images_grad, rtol=1e-9, atol=1e-14)
    assert torch.allclose(tesla.lr_grad, exact.lr_grad, rtol=1e-9)


def kept_terms_reference(problem):
    """Autograd through theta_N = theta_0 - alpha * sum_i g_i(sg(theta_i), A_i(X)): exactly the kept terms."""
    p = problem
    w, grad_sum = p.start.detach(), 0
    for step in p.steps:  # the problem's drawn minibatches and augmentation parameters
        x = step_inputs(p, p.images, step)
        w_leaf = w.detach().requires_grad_(True)
        ce = torch.nn.functional.cross_entropy(p.model(w_leaf, x), p.labels[step.index])
        (g,) = torch.autograd.grad(ce, w_leaf, create_graph=True)
        grad_sum = grad_sum + g
        w = w_leaf.detach() - p.lr.detach() * g.detach()
    loss = p.objective(p.start - p.lr * grad_sum)
    return torch.autograd.grad(loss, [p.images, p.lr])


@pytest.mark.parametrize("soft", [False, True])
def test_first_order_computes_exactly_the_terms_it_keeps(soft):
    aug = DifferentiableAugmentation((8, 8), "color_crop_scale_rotate").double()
    problem = tiny_problem(syn_steps=5, augment=aug, soft=soft)
    tesla = FirstOrder().run(problem)
    images_grad, lr_grad = kept_terms_reference(problem)
    assert torch.allclose(tesla.images_grad, images_grad, rtol=1e-8, atol=1e-13)
    assert torch.allclose(tesla.lr_grad, lr_grad, rtol=1e-8)


def test_first_order_error_is_small_and_shrinks_with_the_step_size():
    """The dropped Hessian terms are O(alpha * N) relative to the kept ones (documented, measured here)."""
    errors = {}
    for lr in (0.001, 0.01, 0.05):
        problem = tiny_problem(syn_steps=10, lr=lr)
        exact, tesla = Unrolled().run(problem), FirstOrder().run(problem)
        assert tesla.loss == pytest.approx(exact.loss, rel=1e-9)  # the loss value itself is exact
        errors[lr] = float((tesla.images_grad - exact.images_grad).norm() / exact.images_grad.norm())
    assert errors[0.001] < 0.01 and errors[0.01] < 0.1, errors
    assert errors[0.001] < errors[0.01] < errors[0.05], errors


PROBE = textwrap.dedent("""
    import json, sys, torch
    from mct_plugin.harness.distill.gradient_modes import StudentProblem
    from mct_plugin.harness.plugins.components import build_components
    from mct_plugin.harness.distill.matching import normalised_distance
    from mct_plugin.harness.models import FunctionalModel

    components = build_components()
    mode, short, long = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.manual_seed(0)
    model = FunctionalModel(components.models.create("ConvNetW32", 1, 10, (28, 28)))
    start = model.initial_flat(); target = start + 0.01 * torch.randn_like(start)
    images = torch.randn(20, 1, 28, 28, requires_grad=True)
    def peak_kb():  # VmHWM belongs to this process image (ru_maxrss would inherit the parent's peak)
        return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
    peaks = []
    for steps in (short, long):  # the long rollout's peak, measured from the short one's (paid start-up costs)
        problem = StudentProblem(model, start, lambda t: normalised_distance(t, start, target), images,
                                 torch.arange(10).repeat(2), torch.tensor(0.01, requires_grad=True), steps, 20)
        components.gradient_modes.get(mode)().run(problem)
        peaks.append(peak_kb())
    print(json.dumps({"growth_mb": (peaks[1] - peaks[0]) / 1024}))
""")


def peak_growth_mb(mode: str, short: int, long: int) -> float:
    """How much higher the peak memory of ``mode`` is on a ``long`` student rollout than on a ``short``
    one, in MB (one fresh process: the short rollout first, the long one after it)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, mode, str(short), str(long)], capture_output=True, text=True,
                          timeout=300, env={"DD_HARNESS_MALLOC_TUNING": "0", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])["growth_mb"]


def test_checkpointed_and_first_order_peaks_do_not_grow_with_syn_steps():
    unrolled = peak_growth_mb("unrolled", 2, 12)
    assert unrolled > 100, unrolled  # the probe is sensitive: the unrolled graph grows ~16 MB per step (~160 MB)
    # the same 6x longer rollout: only the stored parameter vectors (ConvNetW32: 0.2 MB each) and allocator noise
    for mode in ("first-order", "checkpointed"):
        growth = peak_growth_mb(mode, 2, 12)
        assert growth < 30, (mode, growth)


# -- checkpointed: the exact gradient by reverse accumulation ---------------------------------------
# name -> (channels, image size); every model family, at test size (ConvNets 8 wide, by norm)
FAMILIES = {"ConvNetW8": (1, (8, 8)), "ConvNetW8BN": (1, (8, 8)), "ConvNetW8NN": (1, (8, 8)),
            "ConvNetW8LN": (3, (8, 8)), "AlexNet": (1, (16, 16)), "VGG11": (1, (32, 32)), "ResNet18": (1, (16, 16)),
            "timm:resnet10t": (3, (16, 16))}
CONVNET_NORMS = {"ConvNetW8": "instancenorm", "ConvNetW8BN": "batchnorm", "ConvNetW8NN": "none",
                 "ConvNetW8LN": "layernorm"}


def family_problem(model_name, syn_steps, dsa=True, soft=False, dtype=torch.float64, lr=0.02):
    channels, size = FAMILIES[model_name]
    torch.manual_seed(0)
    if model_name in CONVNET_NORMS:
        module = ConvNet(channels, 3, size, ConvNetConfig(width=8, depth=2, norm=CONVNET_NORMS[model_name]))
    else:
        module = components().models.create(model_name, channels, 3, size)
    module = module.to(dtype)
    model = FunctionalModel(module)
    start = model.initial_flat()
    target = start + 0.01 * torch.randn_like(start, dtype=torch.float32).to(dtype)
    images = torch.randn(6, channels, *size).to(dtype).requires_grad_(True)
    labels = torch.softmax(torch.randn(6, 3).to(dtype), 1) if soft else torch.arange(3).repeat_interleave(2)
    aug = DifferentiableAugmentation(size).to(dtype) if dsa else None
    return StudentProblem(model, start, lambda theta: normalised_distance(theta, start, target), images, labels,
                          torch.tensor(lr, dtype=dtype, requires_grad=True), syn_steps, batch_syn=3, augment=aug)


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


def assert_same_gradient(problem, mode, tolerance):
    exact, other = Unrolled().run(problem), mode.run(problem)
    assert other.loss == pytest.approx(exact.loss, rel=tolerance)
    assert relative_error(other.images_grad, exact.images_grad) <= tolerance
    assert relative_error(other.lr_grad, exact.lr_grad) <= tolerance


@pytest.mark.parametrize("mode", ["unrolled", "checkpointed", "first-order"])
def test_a_gradient_mode_draws_nothing(mode):
    """Every random choice of a student rollout is drawn with the problem (by the loop, from the
    run's stream); the computation leaves torch's generator untouched, so the stream of a run does
    not depend on its gradient mode (DESIGN.md section 9)."""
    problem = family_problem("ConvNetW8", syn_steps=4, dsa=True)
    before = torch.get_rng_state()
    components().gradient_modes.get(mode)().run(problem)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("model_name", list(CONVNET_NORMS))
def test_checkpointed_equals_unrolled_on_every_convnet_norm(model_name):
    """float64: equal to rounding, with DSA and soft labels, dense and sparse checkpoints."""
    problem = family_problem(model_name, syn_steps=4, soft=True)
    assert_same_gradient(problem, Checkpointed(), 1e-10)
    assert_same_gradient(problem, checkpointed(3), 1e-10)


@pytest.mark.parametrize("model_name", [name for name in FAMILIES if name not in CONVNET_NORMS])
def test_checkpointed_equals_unrolled_on_the_larger_families(model_name):
    """3 steps with checkpoints every 2 (a dense segment and a recomputed one). float64: at test
    sizes these nets end in 1x1 feature maps, where float32 itself is ~2% off float64 for both
    modes alike, so float32 could not tell a wrong gradient from rounding."""
    problem = family_problem(model_name, syn_steps=3, lr=0.01)
    assert_same_gradient(problem, checkpointed(2), 1e-8)


@pytest.mark.parametrize("syn_steps,dsa,soft,interval", [(1, True, False, 0), (2, False, False, 1),
                                                         (7, True, True, 2), (7, False, True, 0),
                                                         (12, True, False, 5)])
def test_checkpointed_equals_unrolled_with_and_without_dsa_and_soft_labels(syn_steps, dsa, soft, interval):
    problem = family_problem("ConvNetW8", syn_steps, dsa=dsa, soft=soft)
    assert_same_gradient(problem, checkpointed(interval), 1e-11)


def test_checkpointed_equals_unrolled_in_float32_over_80_steps():
    """The issue's target: <= 1e-5 relative in the precision runs use, at the longest syn_steps."""
    problem = family_problem("ConvNetW8", syn_steps=80, dtype=torch.float32, lr=0.01)
    assert_same_gradient(problem, checkpointed(9), 1e-5)


def test_checkpointed_leaves_batchnorm_statistics_as_unrolled_does():
    problem = family_problem("ConvNetW8BN", syn_steps=5)
    module = problem.model.module
    initial = {k: v.clone() for k, v in module.named_buffers()}
    after = {}
    for mode in (Unrolled(), checkpointed(2)):
        with torch.no_grad():
            for k, v in module.named_buffers():
                v.copy_(initial[k])
        mode.run(problem)
        after[type(mode).__name__.lower()] = {k: v.clone() for k, v in module.named_buffers()}
    assert after["unrolled"].keys() == after["checkpointed"].keys() and after["unrolled"]
    for k in after["unrolled"]:
        assert torch.equal(after["unrolled"][k], after["checkpointed"][k]), k


def test_sparse_checkpoints_are_chosen_for_large_parameter_vectors():
    small = family_problem("ConvNetW8", syn_steps=80)
    assert Checkpointed().interval_for(small) == 1
    large = StudentProblem(**{**small.__dict__, "start": torch.zeros(2_000_000)})  # 80 x 8 MB > 256 MiB
    assert Checkpointed().interval_for(large) == 9  # ceil(sqrt(80))
    assert checkpointed(4).interval_for(large) == 4
    with pytest.raises(ValueError, match="interval"):
        checkpointed(-1)


# -- the automatic choice ------------------------------------------------------------------------------
def test_step_graph_is_measured_without_touching_the_random_state():
    problem = family_problem("ConvNetW8", syn_steps=3)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    one = step_graph_bytes(problem)
    assert torch.equal(torch.get_rng_state(), before)
    assert one > 0
    bigger = StudentProblem(**{**problem.__dict__, "images": torch.randn(24, 1, 8, 8, dtype=torch.float64),
                               "labels": torch.arange(3).repeat(8), "batch_syn": 12, "steps": None})
    assert step_graph_bytes(bigger) > 2 * one  # the graph grows with the minibatch


def test_auto_picks_checkpointed_when_unrolled_does_not_fit_and_says_why():
    problem = family_problem("ConvNetW8", syn_steps=20)
    estimate = 21 * step_graph_bytes(problem)
    modes = [components().build("gradient mode", name, context()) for name in ("checkpointed", "unrolled", "first-order")]
    roomy = choose_exact_mode(problem, modes, (4 * estimate, "test"))
    assert roomy.name == "unrolled" and "fits in" in roomy.reason and "20 steps" in roomy.reason
    tight = choose_exact_mode(problem, modes, (estimate, "test limit"))
    assert tight.name == "checkpointed" and "does not fit comfortably" in tight.reason and "test limit" in tight.reason
    assert choose_exact_mode(problem, modes, (None, "unknown")).name == "checkpointed"
    assert choose_exact_mode(problem, modes[1:], (estimate, "test limit")).name == "unrolled"  # the only exact one


def context(**plugin_options):
    from mct_plugin.harness.components import ComponentContext
    from mct_plugin.harness.config import DistillConfig

    config = DistillConfig(matcher="mtt", plugin_options=plugin_options)
    return ComponentContext(config, components(), report=lambda line: None)


def test_auto_is_a_registered_mode_that_resolves_to_a_built_exact_mode():
    auto = components().build("gradient mode", "auto", context(checkpoint_interval=3))
    problem = family_problem("ConvNetW8", syn_steps=4)
    chosen = auto.resolve(lambda: problem)
    assert chosen.name in ("unrolled", "checkpointed") and chosen.exact and not chosen.chooses
    assert components().gradient_modes.get("auto").chooses
    built = components().build("gradient mode", "checkpointed", context(checkpoint_interval=3))
    assert built.interval_for(problem) == 3  # the mode's own option, from the run's options


def test_memory_limits_parse_with_units():
    assert parse_bytes("8G") == 8 * 2**30 and parse_bytes("512M") == 512 * 2**20 and parse_bytes("1000") == 1000
    assert parse_bytes("1.5GiB") == int(1.5 * 2**30)
    for bad in ("", "lots", "-1G", "0"):
        with pytest.raises(ConfigError, match="DD_HARNESS_MEMORY_LIMIT"):
            parse_bytes(bad)


@pytest.mark.parametrize("soft,dsa", [(False, True), (True, True), (False, False)])
def test_checkpointed_in_pieces_equals_unrolled(soft, dsa):
    """A minibatch differentiated piece by piece (one piece's graph at a time) gives the same gradient."""
    problem = family_problem("ConvNetW8", syn_steps=6, dsa=dsa, soft=soft)  # minibatches of 3: pieces of 2 and 1
    assert checkpointed(piece=2).pieces_for(problem, 3) == [slice(0, 2), slice(2, 3)]
    assert_same_gradient(problem, checkpointed(piece=2), 1e-11)
    assert_same_gradient(problem, checkpointed(4, piece=1), 1e-11)


def test_models_with_batch_statistics_are_never_cut_into_pieces():
    problem = family_problem("ConvNetW8BN", syn_steps=2)
    assert checkpointed(piece=1).pieces_for(problem, 3) is None  # BatchNorm mixes the images of a batch
    assert Checkpointed().pieces_for(family_problem("ConvNetW8", syn_steps=2), 3) is None  # small batch: at once
