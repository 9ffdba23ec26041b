"""The answer key of exercise 07: the U-Net's time embedding and the FID, with its small-sample bias
(solutions/07_mnist.py).

For each question: the inputs it is checked on, the package's reference and the known mistakes, each with its
hint (see :mod:`minddim.grading.spec`).  No question needs MNIST: the inputs are small random tensors.
"""

from __future__ import annotations

import math

import torch

from ...models import timestep_embedding
from ..spec import Case, register
from ._cases import LONG


# -- 1. the sinusoidal time embedding ------------------------------------------------------------------------------
def _embedding_cases():
    g = torch.Generator().manual_seed(2070)

    def case(label, t, dim):
        return Case(label, {"t": t, "dim": dim})
    return [case("random t, batch 5, dim 16 (md.UNet's, base 16)", torch.randint(1, LONG.T + 1, (5,), generator=g), 16),
            case("an odd dim (7)", torch.randint(1, LONG.T + 1, (4,), generator=g), 7),
            case("t = 1 and t = T, dim 64", torch.tensor([1, LONG.T]), 64),
            case("batch size 1, dim 2 (one frequency)", torch.tensor([500]), 2),
            case("an odd dim (3), t = 1, 2, 3", torch.tensor([1, 2, 3]), 3)]


def _embedding_with(cos_first=False, exponent=lambda i, h, dim: i / h, interleave=False, pad_first=False, shift=0):
    def f(t, dim):
        h = dim // 2
        i = torch.arange(h, dtype=torch.float64)
        freqs = 10_000.0 ** (-exponent(i, h, dim))
        args = (t.double() - shift)[:, None] * freqs[None]
        a, b = (args.cos(), args.sin()) if cos_first else (args.sin(), args.cos())
        emb = torch.stack([a, b], 2).reshape(len(t), 2 * h) if interleave else torch.cat([a, b], 1)
        if dim % 2:
            emb = torch.nn.functional.pad(emb, (1, 0) if pad_first else (0, 1))
        return emb.float()
    return f


register(
    "timestep_embedding",
    hints=("the time t as a vector: sines and cosines of t at frequencies spaced geometrically from 1 down towards "
           "1/10000, fast ones telling neighbouring times apart, slow ones saying how noisy",
           "notebook 07, section 2 (The U-Net and its time embedding); DDPM appendix B; Vaswani et al. 2017, sec. 3.5; "
           "md.timestep_embedding's docstring"),
    cases=_embedding_cases,
    reference=lambda t, dim: timestep_embedding(t, dim),
    mistakes={
        "the sines come first, then the cosines: [sin(t w_0), ..., sin(t w_{h-1}), cos(t w_0), ..., cos(t w_{h-1})]":
            _embedding_with(cos_first=True),
        "the exponent is i / h with h = dim // 2, for i = 0..h-1: the slowest frequency is 10000^(-(h-1)/h), not "
        "1/10000 (i / (h - 1) is another convention)": _embedding_with(exponent=lambda i, h, dim: i / (h - 1)),
        "two blocks, all sines then all cosines, not sine and cosine alternating column by column":
            _embedding_with(interleave=True),
        "for an odd dim, h = dim // 2 frequencies with exponent i / h; 2 i / dim differs when dim is odd":
            _embedding_with(exponent=lambda i, h, dim: 2 * i / dim),
        "for an odd dim the zero column comes last, after the cosines": _embedding_with(pad_first=True),
        "embed t itself (the course's time is 1-based), not t - 1": _embedding_with(shift=1),
    },
    # the package computes the frequencies and t * w in float32: at t = 1000 the angles carry ~1e-4 of rounding, so
    # an answer computed in float64 and cast at the end differs by that much; every listed mistake is off by O(1)
    rtol=1e-4, atol=5e-4)


# -- 2. the Frechet distance between two Gaussians ------------------------------------------------------------------
def _spd(d, g):
    """A random symmetric positive definite d x d matrix (float64), eigenvalues between e^-1.5 and e^1.5 (0.22 to 4.5)."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = (3 * torch.rand(d, generator=g, dtype=torch.float64) - 1.5).exp()
    return (q * lam) @ q.T


def _frechet_cases():
    g = torch.Generator().manual_seed(2071)

    def case(label, mu1, cov1, mu2, cov2):
        return Case(label, {"mu1": mu1, "cov1": cov1, "mu2": mu2, "cov2": cov2})

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def diag(d):
        return torch.diag(0.2 + torch.rand(d, generator=g, dtype=torch.float64))
    mu, c, mu16 = randn(3), _spd(3, g), randn(16)
    def ellipse(degrees):                       # variances 4 and 1/4 along axes turned by `degrees`
        a = math.radians(degrees)
        r = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        return r @ torch.diag(torch.tensor([4.0, 0.25], dtype=torch.float64)) @ r.T
    return [case("two ellipses 45 degrees apart, d = 2 (C1 C2 not symmetric)", torch.tensor([0.5, 0.0], dtype=torch.float64),
                 ellipse(10), torch.tensor([0.0, 0.5], dtype=torch.float64), ellipse(55)),
            case("random means and covariances, d = 4", randn(4), _spd(4, g), randn(4), _spd(4, g)),
            case("diagonal covariances, d = 5 (they commute)", randn(5), diag(5), randn(5), diag(5)),
            case("the same Gaussian twice, d = 3", mu, c, mu.clone(), c.clone()),
            case("d = 1", randn(1), torch.tensor([[0.7]], dtype=torch.float64), randn(1),
                 torch.tensor([[2.5]], dtype=torch.float64)),
            case("equal means, d = 16", mu16, _spd(16, g), mu16.clone(), _spd(16, g))]


def _sym_sqrt(c):
    lam, q = torch.linalg.eigh(c)
    return (q * lam.clamp(min=0).sqrt()) @ q.T


def frechet_distance(mu1, cov1, mu2, cov2):
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)), in float64: tr (C1 C2)^(1/2) is the sum of the square roots
    of the eigenvalues of C1 C2, which are those of the symmetric C1^(1/2) C2 C1^(1/2)."""
    mu1, cov1, mu2, cov2 = (v.double() for v in (mu1, cov1, mu2, cov2))
    r1 = _sym_sqrt(cov1)
    lam = torch.linalg.eigvalsh(r1 @ cov2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + cov1.trace() + cov2.trace() - 2 * lam.clamp(min=0).sqrt().sum())


def _frechet_with(mean_term=lambda d: (d ** 2).sum(), cross=None, factor=2.0):
    def f(mu1, cov1, mu2, cov2):
        c = cross(cov1, cov2) if cross is not None else (
            torch.linalg.eigvalsh(_sym_sqrt(cov1) @ cov2 @ _sym_sqrt(cov1)).clamp(min=0).sqrt().sum())
        return float(mean_term(mu1 - mu2) + cov1.trace() + cov2.trace() - factor * c)
    return f


register(
    "frechet_distance",
    hints=("the FID's distance between two Gaussians: how far apart their means are, plus how differently they "
           "spread (0 only for the same Gaussian)",
           "notebook 07, section 3 (How we score digits); Heusel et al. 2017 (the Frechet distance of Dowson "
           "and Landau 1982)"),
    cases=_frechet_cases,
    reference=frechet_distance,
    mistakes={
        "(C1 C2)^(1/2) is not C1^(1/2) C2^(1/2) unless C1 and C2 commute: take the square root of the product":
            _frechet_with(cross=lambda a, b: (_sym_sqrt(a) @ _sym_sqrt(b)).trace()),
        "the cross term is 2 tr (C1 C2)^(1/2): the factor 2 is missing": _frechet_with(factor=1.0),
        "the mean term is the squared distance ||mu1 - mu2||^2, not the distance": _frechet_with(
            mean_term=lambda d: d.norm()),
        "C1 * C2 is the elementwise product: the formula has the matrix product C1 @ C2, and its matrix square root":
            _frechet_with(cross=lambda a, b: (a * b).sqrt().trace()),
        "(C1 @ C2).sqrt() takes the square root of each entry: the formula needs the matrix square root":
            _frechet_with(cross=lambda a, b: (a @ b).diagonal().sqrt().sum()),
        "the square root is of the matrix C1 C2, then the trace: not the square root of the trace tr(C1 C2)":
            _frechet_with(cross=lambda a, b: (a @ b).trace().sqrt()),
    },
    # any exact route (scipy.linalg.sqrtm of C1 C2, eigenvalues of C1 C2 or of C1^(1/2) C2 C1^(1/2), float64) agrees
    # to ~1e-10 here; atol covers the case with distance 0, where square roots of rounding remain (~1e-7)
    rtol=1e-6, atol=1e-5)


# -- 3. the FID's small-sample bias (a derivation) ------------------------------------------------------------------
def fid_bias(d, n, m):
    """The leading term, for n, m >> d, of E[FID] between Gaussians fitted to n and to m independent draws of
    N(0, I_d) (m = inf: the true Gaussian): the mean term d (1/n + 1/m) plus the covariance term
    d (d + 1) / 4 (1/n + 1/m), i.e. d (d + 5) / 4 (1/n + 1/m)."""
    return d * (d + 5) / 4 * (1 / n + 1 / m)


def _bias_cases():
    def case(label, d, n, m):
        return Case(label, {"d": d, "n": n, "m": m})
    return [case("d = 6, n = 1000 against m = 4000", 6, 1000, 4000),
            case("d = 1, n = 500 against the true Gaussian (m = inf)", 1, 500, math.inf),
            case("d = 128 (the MNIST classifier's features), n = 1000 against m = 10000", 128, 1000, 10_000),
            case("d = 2, n = m = 2000", 2, 2000, 2000),
            case("d = 32, n = 100000 against the true Gaussian", 32, 100_000, math.inf)]


def _bias_with(mean=lambda d: d, cov=lambda d: d * (d + 1) / 4, one_sample=False):
    def f(d, n, m):
        return (mean(d) + cov(d)) * (1 / n + (0 if one_sample else 1 / m))
    return f


register(
    "fid_bias",
    forbidden=("metrics.frechet_distance", "metrics.mnist_fid"),
    hints=("even a perfect model scores FID > 0: both fitted Gaussians carry sampling error, in the mean and in "
           "the covariance, and the FID adds up their squares; to leading order each falls like 1/(sample size)",
           "not in the notebook (its section 3 says only that the FID is biased upwards): derive it, the mean term "
           "from E||mean of n draws||^2 and the covariance term by expanding tr(S1 + S2 - 2 (S1 S2)^(1/2)) to second "
           "order in S - I"),
    cases=_bias_cases,
    reference=fid_bias,
    mistakes={
        "the covariance term is missing: the fitted covariances differ from I too, and tr(S1 + S2 - 2 (S1 S2)^(1/2)) "
        "is of second order in S - I, like the mean term": _bias_with(cov=lambda d: 0),
        "the mean term is missing: the sample means differ, E||mean1 - mean2||^2 = d (1/n + 1/m)":
            _bias_with(mean=lambda d: 0),
        "near I, (sqrt(lambda) - 1)^2 is about (lambda - 1)^2 / 4: the square root halves the deviation, and the "
        "square makes it a quarter": _bias_with(cov=lambda d: d * (d + 1)),
        "a quarter, not a half: (sqrt(lambda) - 1)^2 is about ((lambda - 1) / 2)^2":
            _bias_with(cov=lambda d: d * (d + 1) / 2),
        "the off-diagonal entries of the sample covariance are noisy too (variance 1/n each): "
        "E||S - I||_F^2 = d (d + 1) / n, not only the diagonal's 2 d / n": _bias_with(cov=lambda d: d / 2),
        "a diagonal entry of the sample covariance has variance 2/n (chi-squared), an off-diagonal one 1/n: "
        "E||S - I||_F^2 = d (d + 1) / n, not d^2 / n": _bias_with(cov=lambda d: d * d / 4),
        "both Gaussians are fitted to samples: each contributes its own error, 1/n + 1/m":
            _bias_with(one_sample=True),
    },
    # leading order in 1/n: writing n - 1 for n (the unbiased covariance) moves the answer by 1/n <= 0.2 % here;
    # every listed mistake is off by more than 3 % on the first case where it fails
    rtol=1e-2, atol=0.0)
