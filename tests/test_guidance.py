"""Guidance (minddim/guidance.py) against the exact class-conditional models of a Gaussian mixture, whose
components are the classes (minddim/analytic.py), and the class-conditional U-Net (minddim/models.py)."""

import math

import pytest
import torch
from torch import nn

import minddim as md
from minddim.analytic import sample_mixture
from minddim.guidance import class_log_prob_grad, is_conditional, null_label


@pytest.fixture(scope="module")
def schedule():
    return md.Schedule.linear()


@pytest.fixture(scope="module")
def den(schedule):
    """Eight Gaussians (std 0.2 on a circle of radius 2): eight well-separated classes."""
    return md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)


@pytest.fixture(scope="module")
def skewed(schedule):
    """Three overlapping classes with unequal weights and full covariances: p(y | x_t) far from 0 and 1."""
    w = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    m = torch.tensor([[0.0, 0.0], [1.0, 0.5], [-0.5, 1.0]], dtype=torch.float64)
    c = torch.tensor([[[0.5, 0.2], [0.2, 0.3]], [[0.2, -0.1], [-0.1, 0.4]], [[0.3, 0.0], [0.0, 0.1]]],
                     dtype=torch.float64)
    return md.GaussianMixtureDenoiser(w, m, c, schedule)


def _batch(n, D=2, seed=0, T=1000, K=8):
    g = torch.Generator().manual_seed(seed)
    x = 2 * torch.randn(n, D, dtype=torch.float64, generator=g)
    t = torch.cat([torch.tensor([1, 2, 10, 500, T]), torch.randint(1, T + 1, (n - 5,), generator=g)])
    y = torch.randint(0, K, (n,), generator=g)
    return x, t, y


def tiny_unet(num_classes=3, seed=0):
    torch.manual_seed(seed)
    return md.UNet(channels=1, base=8, mults=(1, 2), num_res=1, groups=4, num_classes=num_classes).eval()


class NoisyClassifier(nn.Module):
    """A small noise-aware classifier (x_t, t) -> logits, as classifier guidance needs."""

    def __init__(self, dim=2, classes=3, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 16, hidden), nn.Tanh(), nn.Linear(hidden, classes))

    def forward(self, x, t):
        emb = md.timestep_embedding(t, 16).to(x.dtype)
        return self.net(torch.cat([x, emb], 1))


# -- the exact models -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["den", "skewed"])
def test_exact_classifier_guidance_at_scale_1_is_the_exact_conditional_model(which, request, schedule):
    """eps(x_t) - sqrt(1 - bar-alpha_t) grad log p(y | x_t) (Dhariwal & Nichol eq. 14, s = 1), the gradient by
    autograd through the exact classifier, equals E[eps | x_t, y] to 1e-10 in float64."""
    d = request.getfixturevalue(which)
    K = d.num_components
    x, t, y = _batch(300, K=K)
    guided = md.classifier_guidance(d, d.log_class_posterior, y, 1.0, schedule)
    exact = d.conditional()(x, t, y)
    assert torch.allclose(guided(x, t), exact, rtol=0, atol=1e-10)
    # the closed-form class score equals autograd's, and the class eps is the component's own Gaussian model
    assert torch.allclose(class_log_prob_grad(d.log_class_posterior, x, t, y), d.class_posterior_grad(x, t, y),
                          rtol=0, atol=1e-10)
    k = 1
    alone = md.GaussianDenoiser(d.means[k], d.covs[k], schedule)
    assert torch.allclose(d.class_eps(x, t, k), alone(x, t), rtol=0, atol=1e-12)


def test_exact_class_posterior_is_bayes_rule_and_the_null_label_is_unconditional(skewed, schedule):
    d, K = skewed, skewed.num_components
    x, t, _ = _batch(200, K=K)
    logp = d.log_class_posterior(x, t)
    assert logp.shape == (200, K) and torch.allclose(logp.exp().sum(1), torch.ones(200, dtype=torch.float64))
    # Bayes' rule from the per-class densities q(x_t | y) = N(sqrt(ab) m_y, ab C_y + (1 - ab) I)
    ab = schedule.alpha_bars[t]
    cov = ab[:, None, None, None] * d.covs + (1 - ab)[:, None, None, None] * torch.eye(2, dtype=torch.float64)
    mean = ab.sqrt()[:, None, None] * d.means
    joint = torch.distributions.MultivariateNormal(mean, cov).log_prob(x[:, None, :]) + d.weights.log()
    assert torch.allclose(logp, joint - joint.logsumexp(1, keepdim=True), rtol=0, atol=1e-10)
    # at t = 0 and large T the posterior goes from sharp to the prior
    assert torch.allclose(d.log_class_posterior(x, 1000).exp().mean(0), d.weights, atol=0.01)
    cond = d.conditional()
    assert cond.num_classes == K and null_label(cond) == K and is_conditional(cond) and not is_conditional(d)
    assert torch.equal(cond(x, t, K), d(x, t))
    mixed = torch.tensor([K, 0] * 100)
    out = cond(x, t, mixed)
    assert torch.equal(out[::2], d(x, t)[::2]) and torch.equal(out[1::2], d.class_eps(x, t, 0)[1::2])


@pytest.mark.parametrize("w", [0.5, 2.0])
def test_exact_classifier_free_guidance_is_classifier_guidance_with_the_implicit_classifier(w, skewed, schedule):
    """With exact scores, (1 + w) eps(x, y) - w eps(x) is classifier guidance at scale w of the conditional model
    and at scale 1 + w of the unconditional one (Ho & Salimans 2022, secs. 3.1-3.2)."""
    d = skewed
    x, t, y = _batch(200, K=3)
    cfg = md.classifier_free(d.conditional(), y, w)(x, t)
    on_conditional = md.classifier_guidance(d.conditional(), d.log_class_posterior, y, w, schedule)(x, t)
    on_unconditional = md.classifier_guidance(d, d.log_class_posterior, y, 1 + w, schedule)(x, t)
    assert torch.allclose(cfg, on_conditional, rtol=0, atol=1e-10)
    assert torch.allclose(cfg, on_unconditional, rtol=0, atol=1e-10)


# -- classifier-free guidance ------------------------------------------------------------------------------------
def test_classifier_free_at_w0_is_the_conditional_model(skewed):
    x, t, y = _batch(100, K=3)
    cond = skewed.conditional()
    assert torch.equal(md.classifier_free(cond, y, 0)(x, t), cond(x, t, y))
    net = tiny_unet()
    with torch.no_grad():
        net.label.weight.normal_()                                         # a trained-looking class embedding
        xi, ti = torch.randn(6, 1, 12, 12), torch.tensor([1, 5, 50, 200, 700, 1000])
        yi = torch.tensor([0, 1, 2, 0, 1, 2])
        assert torch.allclose(md.classifier_free(net, yi, 0.0)(xi, ti), net(xi, ti, yi), rtol=0, atol=1e-5)


def test_classifier_free_runs_one_batched_forward_equal_to_two_separate_calls():
    net = tiny_unet(num_classes=3)
    calls = []

    class Counting(nn.Module):
        num_classes = 3

        def forward(self, x, t, y):
            calls.append(x.shape[0])
            return net(x, t, y)

    with torch.no_grad():
        net.label.weight.normal_()
        x, t, y = torch.randn(5, 1, 12, 12), torch.tensor([3, 30, 300, 600, 999]), torch.tensor([2, 0, 1, 1, 0])
        w = 1.5
        got = md.classifier_free(Counting(), y, w)(x, t)
        assert calls == [10]                                                 # one forward of 2B rows
        want = (1 + w) * net(x, t, y) - w * net(x, t, torch.full((5,), 3))
        assert torch.allclose(got, want, rtol=0, atol=1e-5)
        assert not torch.allclose(got, net(x, t, y), atol=1e-3)            # the guidance did something
        # one int label for the whole batch, and a scalar t, as some callers pass them
        assert torch.allclose(md.classifier_free(net, 1, w)(x, 300), md.classifier_free(net, torch.full((5,), 1), w)(
            x, torch.full((5,), 300)), rtol=0, atol=1e-6)


def test_docstring_states_the_diffusers_convention():
    doc = md.classifier_free.__doc__
    assert "guidance_scale" in doc and "(1 + w)" in doc and "eq. 6" in doc
    assert "guidance_scale = 2.5" in md.classifier_free(md.GaussianMixtureDenoiser(
        torch.ones(1, dtype=torch.float64), torch.zeros(1, 2), torch.eye(2)[None], md.Schedule.linear()).conditional(),
        0, 1.5).__doc__


# -- classifier guidance with a network classifier ---------------------------------------------------------------
def test_classifier_gradient_matches_finite_differences(schedule):
    torch.manual_seed(0)
    clf = NoisyClassifier().double()
    x = torch.randn(4, 2, dtype=torch.float64)
    t, y = torch.tensor([1, 100, 500, 1000]), torch.tensor([0, 2, 1, 2])
    grad = class_log_prob_grad(clf, x, t, y)

    def log_p(z):
        return torch.log_softmax(clf(z, t), 1).gather(1, y[:, None]).squeeze(1)

    h = 1e-6
    with torch.no_grad():
        for i in range(2):
            e = torch.zeros_like(x)
            e[:, i] = h
            fd = (log_p(x + e) - log_p(x - e)) / (2 * h)
            assert torch.allclose(grad[:, i], fd, rtol=1e-6, atol=1e-9)
    assert all(p.grad is None for p in clf.parameters())                  # nothing accumulated in the classifier
    # the guided eps is eps - s sqrt(1 - bar-alpha_t) grad, term by term
    den = md.GaussianDenoiser(torch.zeros(2), torch.eye(2), schedule)
    got = md.classifier_guidance(den, clf, y, 3.0, schedule)(x, t)
    want = den(x, t) - 3.0 * (1 - schedule.alpha_bars[t]).sqrt()[:, None] * grad
    assert torch.allclose(got, want, rtol=0, atol=1e-12)


def test_guided_models_run_under_no_grad_and_inference_mode_in_every_sampler(den, schedule):
    """The samplers run models under torch.no_grad(); the classifier's gradient is enabled locally."""
    k, n = 5, 64
    xT = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    tau = md.timesteps(1000, 20)
    guided = md.classifier_guidance(den, den.log_class_posterior, k, 1.0, schedule)
    cond = den.conditional()
    want = md.sample(lambda x, t: cond(x, t, k), xT, schedule, tau)
    assert torch.allclose(md.sample(guided, xT, schedule, tau), want, rtol=0, atol=1e-5)
    with torch.inference_mode():
        assert torch.allclose(md.sample(guided, xT, schedule, tau), want, rtol=0, atol=1e-5)
        assert torch.allclose(md.sample(md.classifier_free(cond, k, 0.0), xT, schedule, tau), want, atol=1e-5)
    assert torch.allclose(md.heun(guided, xT, schedule, tau), md.heun(lambda x, t: cond(x, t, k), xT, schedule, tau),
                          rtol=0, atol=1e-5)
    x0 = den.sample_data(n, torch.Generator().manual_seed(1))
    mask = torch.zeros(n, 2)
    mask[:, 0] = 1
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    filled = md.inpaint(md.classifier_free(cond, k, 1.0), x0, mask, schedule, tau, generator=g1)
    same = md.inpaint(md.classifier_guidance(cond, den.log_class_posterior, k, 1.0, schedule), x0, mask, schedule,
                      tau, generator=g2)
    assert torch.equal(filled[:, 0], x0[:, 0]) and torch.allclose(filled, same, rtol=0, atol=1e-4)


def test_ddim_on_the_exact_conditional_model_lands_on_the_chosen_component(den, schedule):
    """DDIM (eta = 0, 200 steps) with the exact conditional model for class k, and with classifier guidance at scale
    1, draws component k: its MMD to 1000 exact draws of that component lies within the band of 1000 perfect draws
    (mean + 4 std over 5 seeds), while the neighbouring component sits far outside it. (With 50 steps the
    deterministic sampler still shrinks this narrow component's spread, 0.18 against 0.2: a discretization error of
    the ODE, not of guidance.)"""
    k, n = 3, 1000
    one = torch.ones(1, dtype=torch.float64)

    def draw(seed, comp=k):
        return sample_mixture(one, den.means[comp:comp + 1], den.covs[comp:comp + 1], n,
                              torch.Generator().manual_seed(seed)).float()

    ref = draw(99)
    floor_mean, floor_std = md.reference_spread(draw, ref, md.mmd, repeats=5)
    band = floor_mean + 4 * floor_std
    xT = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    out = md.sample(md.classifier_guidance(den, den.log_class_posterior, k, 1.0, schedule), xT, schedule,
                    md.timesteps(1000, 200))
    assert md.mmd(out, ref) < band
    assert md.mmd(draw(7, comp=k + 1), ref) > 100 * band
    assert (out - den.means[k].float()).norm(dim=1).max() < 1.0           # every draw in class k's neighbourhood


# -- the class-conditional U-Net ---------------------------------------------------------------------------------
def test_zero_initialised_class_embedding_leaves_the_shipped_unet_bit_for_bit():
    base = md.pretrained("mnist_unet")
    cond = md.UNet(**base.config, num_classes=10)
    cond.load_unconditional_state_dict(base.state_dict())
    cond.eval()
    assert is_conditional(cond) and null_label(cond) == 10 and cond.config["num_classes"] == 10
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 28, 28, generator=g)
    t = torch.tensor([1, 10, 100, 400, 800, 1000])
    with torch.no_grad():
        want = base(x, t)
        for y in (torch.tensor([0, 1, 2, 7, 9, 10]), 4, None):
            assert torch.equal(cond(x, t, y) if y is not None else cond(x, t), want)
    # the unconditional U-Net is unchanged: its state dict has no class embedding and loads strictly
    assert set(md.UNet(**base.config).state_dict()) == set(base.state_dict())
    assert "label.weight" in cond.state_dict() and cond.state_dict()["label.weight"].shape == (11, 4 * 16)
    with pytest.raises(ValueError, match="state_dict"):
        md.UNet(**{**base.config, "base": 8}, num_classes=10).load_unconditional_state_dict(base.state_dict())
    with pytest.raises(ValueError, match="num_classes"):
        base.load_unconditional_state_dict(base.state_dict())


def test_class_embedding_changes_predictions_once_trained():
    net = tiny_unet(num_classes=3)
    x, t = torch.randn(3, 1, 12, 12), torch.tensor([50, 50, 50])
    with torch.no_grad():
        before = net(x, t, torch.tensor([0, 1, 3]))
        net.label.weight.normal_()
        after = net(x, t, torch.tensor([0, 1, 3]))
        assert not torch.allclose(before, after)
        # batched chunks (eval, no grad, more rows than chunk) give each row its own label
        net.chunk = 2
        big = torch.randn(5, 1, 12, 12)
        yy = torch.tensor([0, 1, 2, 3, 1])
        chunked = net(big, torch.full((5,), 70), yy)
        net.chunk = None
        assert torch.allclose(chunked, net(big, torch.full((5,), 70), yy), atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_error_naming_the_argument(skewed, schedule):
    cond = skewed.conditional()
    x, t, _ = _batch(5, K=3)
    x, t = x[:4], t[:4]
    # guidance asked of an unconditional model
    for uncond in (skewed, md.UNet(base=8, mults=(1,), groups=4), lambda x, t: x):
        with pytest.raises(TypeError, match="model.*unconditional"):
            md.classifier_free(uncond, 0, 1.0)
    # a class outside 0..K-1 (the null label is no class to guide towards)
    for bad in (3, -1, torch.tensor([0, 1, 2, 5])):
        with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.2"):
            md.classifier_free(cond, bad, 1.0)
    with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.2"):
        md.classifier_guidance(cond, skewed.log_class_posterior, 3, 1.0, schedule)
    with pytest.raises(ValueError, match=r"y must hold classes 0\.\.2 of the classifier"):
        md.classifier_guidance(skewed, skewed.log_class_posterior, 4, 1.0, schedule)(x, t)
    with pytest.raises(TypeError, match="y must be an integer tensor"):
        md.classifier_free(cond, torch.tensor([0.0, 1.0, 2.0, 1.0]), 1.0)
    with pytest.raises(TypeError, match="y must hold class labels"):
        md.classifier_free(cond, True, 1.0)
    # y whose shape does not match the batch
    with pytest.raises(ValueError, match=r"y has shape \(3,\) but x_t has shape \(4, 2\)"):
        md.classifier_free(cond, torch.tensor([0, 1, 2]), 1.0)(x, t)
    with pytest.raises(ValueError, match=r"y has shape \(3,\)"):
        md.classifier_guidance(skewed, skewed.log_class_posterior, torch.tensor([0, 1, 2]), 1.0, schedule)(x, t)
    with pytest.raises(ValueError, match=r"y must have shape \(\) or \(batch,\)"):
        md.classifier_free(cond, torch.zeros(2, 2, dtype=torch.long), 1.0)
    # non-finite w or scale
    for v in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="w must be a finite real number"):
            md.classifier_free(cond, 0, v)
        with pytest.raises(ValueError, match="scale must be a finite real number"):
            md.classifier_guidance(skewed, skewed.log_class_posterior, 0, v, schedule)
    with pytest.raises(TypeError, match="w must be a finite real number"):
        md.classifier_free(cond, 0, "2")
    with pytest.raises(TypeError, match="classifier must be a callable"):
        md.classifier_guidance(skewed, None, 0, 1.0, schedule)
    with pytest.raises(TypeError, match="schedule"):
        md.classifier_guidance(skewed, skewed.log_class_posterior, 0, 1.0, None)
    with pytest.raises(ValueError, match="classifier.*logits of shape"):
        md.classifier_guidance(skewed, lambda x, t: x.sum(1), 0, 1.0, schedule)(x, t)
    with pytest.raises(ValueError, match="x_t contains NaN"):
        md.classifier_free(cond, 0, 1.0)(torch.full((4, 2), math.nan, dtype=torch.float64), t)
    # the exact models and the U-Net check their labels too
    with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.2 \(or 3, the null label\)"):
        cond(x, t, 4)
    with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.2, got"):
        skewed.class_posterior_grad(x, t, 3)
    with pytest.raises(ValueError, match="y: this UNet is unconditional"):
        md.UNet(base=8, mults=(1,), groups=4)(torch.randn(1, 1, 8, 8), torch.tensor([1]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"y must hold class labels 0\.\.2 \(or 3"):
        tiny_unet(3)(torch.randn(2, 1, 8, 8), torch.tensor([1, 1]), torch.tensor([0, 4]))
    for k in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
            md.UNet(base=8, mults=(1,), groups=4, num_classes=k)


def test_a_floating_time_is_refused_by_the_guided_models():
    """Times are integers 1..T (the papers' 1-based time); a float t is a mistake, named, not silently cast."""
    from minddim.guidance import class_log_prob_grad

    clf = md.NoisyClassifier(1, 10, base=8)
    x = torch.randn(2, 1, 28, 28)
    with pytest.raises(TypeError, match="t must hold integer times"):
        class_log_prob_grad(clf, x, torch.tensor([500.0, 500.0]), 3)
    assert class_log_prob_grad(clf, x, torch.tensor([500, 500], dtype=torch.int32), 3).shape == x.shape
