"""Sample-quality metrics: sliced Wasserstein distance and MMD for low-dimensional samples; the Frechet
distance on an MNIST classifier's features ("MNIST FID"), its confidence, and :func:`sample_quality`, which
samples a model and scores it."""

from __future__ import annotations

import weakref

import numpy as np
import torch

from ._validate import check_positive_int, check_tensor


def _check_pair(x, y):
    check_tensor(x, "x")
    check_tensor(y, "y")
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have shapes (n, D) and (m, D), got {tuple(x.shape)} and {tuple(y.shape)}")
    return x.double(), y.double()


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    """Sliced 2-Wasserstein distance sqrt(E_theta W_2^2(theta.x, theta.y)), theta uniform on the sphere
    (Rabin et al., 2011).  Each 1-D W_2 compares quantile functions on a common grid, so x and y may have
    different sizes.  Same units as the data; 0 for identical empirical laws."""
    x, y = _check_pair(x, y)
    n_projections = check_positive_int(n_projections, "n_projections")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    theta = torch.randn(x.shape[1], n_projections, dtype=torch.float64, generator=generator)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, py = (x @ theta).sort(0).values, (y @ theta).sort(0).values
    n = max(px.shape[0], py.shape[0])
    levels = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    qx, qy = _quantiles(px, levels), _quantiles(py, levels)
    return float(((qx - qy) ** 2).mean().sqrt())


def _quantiles(sorted_proj: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile function (as a step function of the order statistics) at ``levels``."""
    n = sorted_proj.shape[0]
    idx = (levels * n).floor().long().clamp(max=n - 1)
    return sorted_proj[idx]


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidths=(0.1, 0.2, 0.5, 1.0, 2.0)) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy (Gretton et al., 2012) with the kernel
    k(a, b) = sum_h exp(-||a - b||^2 / (2 h^2)).  Near 0 (and possibly slightly negative) when x and y
    come from the same law.

    ``y`` is the reference: its self-term (a third of the work) is computed once per reference tensor and kept
    while that tensor lives and is not modified in place, so scoring many sample sets against one reference set
    costs two kernel sums each, not three. The result is the same number either way."""
    x, y64 = _check_pair(x, y)
    if x.shape[0] < 2 or y64.shape[0] < 2:
        raise ValueError("x and y need at least two samples each")
    h2 = tuple(float(h) ** 2 for h in bandwidths)
    entry = _SELF_TERMS.get(id(y))
    if entry is None or entry[0]() is not y:                    # a reference not seen yet: dropped when it is freed
        weakref.finalize(y, _SELF_TERMS.pop, id(y), None)
        entry = None
    if entry is None or entry[1] != (y._version, h2):            # new, modified in place, or other bandwidths
        entry = (weakref.ref(y), (y._version, h2), _mean_kernel(y64, y64, h2, same=True))
        _SELF_TERMS[id(y)] = entry
    self_term = entry[2]
    return float(_mean_kernel(x, x, h2, same=True) + self_term - 2 * _mean_kernel(x, y64, h2, same=False))


# id(reference tensor) -> (a weak reference to it, (its in-place version, bandwidths), its kernel self-term);
# an entry is dropped when its tensor is freed (weakref.finalize), and used only while the tensor is the same object
_SELF_TERMS: dict = {}


def _mean_kernel(a: torch.Tensor, b: torch.Tensor, h2: tuple, same: bool) -> torch.Tensor:
    """The mean of k(a_i, b_j) over all pairs; over i != j when ``same`` (the unbiased estimate's self-term)."""
    d2 = torch.cdist(a, b).square_()
    total = sum(d2.mul(-0.5 / h).exp_().sum() for h in h2)     # in place: one temporary per bandwidth
    if same:  # unbiased: leave out the diagonal k(a_i, a_i) = len(h2)
        return (total - len(h2) * a.shape[0]) / (a.shape[0] * (a.shape[0] - 1))
    return total / (a.shape[0] * b.shape[0])


def reference_spread(draw, reference: torch.Tensor, metric, repeats: int = 5):
    """How large ``metric(samples, reference)`` is for *perfect* samples: the mean and standard deviation
    of ``metric(draw(seed), reference)`` over ``repeats`` seeds, where ``draw(seed)`` returns fresh data
    of the size the model's samples have.  A model's score is only meaningfully worse than the data's when
    it exceeds this mean by a few standard deviations."""
    repeats = check_positive_int(repeats, "repeats")
    if repeats < 2:
        raise ValueError("repeats must be >= 2 to estimate a spread")
    vals = torch.tensor([float(metric(draw(seed), reference)) for seed in range(repeats)], dtype=torch.float64)
    return float(vals.mean()), float(vals.std())


def frechet_distance(feats1: torch.Tensor, feats2: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al., 2017):
    ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)). With the features of the MNIST classifier's penultimate
    layer this is the course's "MNIST FID" (not comparable with Inception-based FIDs)."""
    from scipy import linalg

    a, b = feats1.double().cpu().numpy(), feats2.double().cpu().numpy()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"feats1 and feats2 must be (n, d) with n >= 2 and equal d, got {a.shape} and {b.shape}")
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", linalg.LinAlgWarning)
            covmean = linalg.sqrtm(c1 @ c2)
        if not np.isfinite(covmean).all():
            raise linalg.LinAlgWarning("non-finite square root")
    except linalg.LinAlgWarning:
        # singular covariances (e.g. dead ReLU features): add a tiny ridge, as reference FID code does
        eps = 1e-6 * np.eye(len(c1))
        covmean = linalg.sqrtm((c1 + eps) @ (c2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean))


def _shipped_unless_given(classifier):
    """``classifier``, or the shipped MNIST classifier when it is None."""
    if classifier is None:
        from .weights import pretrained

        return pretrained("mnist_classifier")
    return classifier


# images per pass of the MNIST classifier: a choice of memory against overhead (the features do not depend on it)
CLASSIFIER_BATCH = 100


@torch.no_grad()
def classifier_features(classifier, images: torch.Tensor, batch: int = CLASSIFIER_BATCH) -> torch.Tensor:
    """Penultimate-layer features of ``classifier`` for images in [-1, 1] (N, 1, 28, 28)."""
    classifier.eval()
    return torch.cat([classifier.features(images[i:i + batch]) for i in range(0, len(images), batch)])


@torch.no_grad()
def mnist_fid(images: torch.Tensor, reference: torch.Tensor, classifier=None) -> float:
    """MNIST FID between two sets of images in [-1, 1], on the shipped classifier's features."""
    classifier = _shipped_unless_given(classifier)
    return frechet_distance(classifier_features(classifier, images), classifier_features(classifier, reference))


@torch.no_grad()
def top_probability(images: torch.Tensor, classifier=None, batch: int = CLASSIFIER_BATCH) -> torch.Tensor:
    """The classifier's top softmax probability for each image in [-1, 1] (N, 1, 28, 28): shape (N,)."""
    classifier = _shipped_unless_given(classifier)
    classifier.eval()
    return torch.cat([torch.softmax(classifier(images[i:i + batch]), 1).max(1).values
                      for i in range(0, len(images), batch)])


def classifier_confidence(images: torch.Tensor, classifier=None, batch: int = CLASSIFIER_BATCH) -> float:
    """Mean of the classifier's top softmax probability: near 1 for clean digits, lower for ambiguous ones."""
    return float(top_probability(images, classifier, batch).mean())


SURE = 0.9


def classifier_sure_fraction(images: torch.Tensor, classifier=None, threshold: float = SURE,
                             batch: int = CLASSIFIER_BATCH) -> float:
    """The fraction of images whose top softmax probability exceeds ``threshold`` (default 0.9): the share the
    classifier reads as one digit. A mean confidence hides how many samples are ambiguous; this counts them.
    On the shipped classifier, 97.25% of the 10,000 MNIST test digits pass 0.9 (tests/test_classifier_fid.py)."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    return float((top_probability(images, classifier, batch) > threshold).float().mean())


def within_class_spread(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Within-class diversity: the mean over the classes present in ``labels`` of tr Cov(features | class), the
    unbiased trace: a class's summed squared distances of its feature vectors (N, d) to their class mean, over
    n - 1 (half the mean squared distance between two distinct vectors of the class).  It falls when a class's samples collapse onto fewer shapes; divided by the same for real digits of
    those classes it reads 1 for samples as varied as the data.  Each class needs at least two rows."""
    check_tensor(features, "features")
    if features.dim() != 2:
        raise ValueError(f"features must have shape (N, d), got {tuple(features.shape)}")
    labels = torch.as_tensor(labels)
    if labels.shape != features.shape[:1]:
        raise ValueError(f"labels must have shape ({features.shape[0]},), one per row of features, "
                         f"got {tuple(labels.shape)}")
    spreads = []
    for c in labels.unique():
        f = features[labels == c].double()
        if len(f) < 2:
            raise ValueError(f"labels: class {int(c)} has one row; the within-class spread needs two or more")
        spreads.append(float(((f - f.mean(0)) ** 2).sum(1).sum() / (len(f) - 1)))
    return sum(spreads) / len(spreads)


@torch.no_grad()
def commitment_times(trajectory, classifier=None, batch: int = CLASSIFIER_BATCH) -> torch.Tensor:
    """When each sample of a sampling walk settles on the digit it becomes.

    ``trajectory`` is what :func:`~minddim.sampling.sample` returns with ``trajectory=True``: the x_0 predicted
    at each time tau_S > ... > tau_1 of the walk (DDIM eq. 12's "predicted x_0"; DDPM eq. 15). The classifier
    reads each prediction; a sample's commitment time is the largest tau_k from which on every prediction is
    read as the class of the last one (tau_S if it never changes its mind, tau_1 if it does so at the last
    step). Returns the times, shape (N,), in the walk's own 1-based times."""
    preds, times = getattr(trajectory, "x0_preds", None), getattr(trajectory, "times", None)
    if not isinstance(preds, torch.Tensor) or not isinstance(times, torch.Tensor):
        raise TypeError("trajectory must be what sample(..., trajectory=True) returns (x0_preds and times)")
    if preds.dim() != 5 or preds.shape[2:] != (1, 28, 28) or len(times) != len(preds) + 1:
        raise ValueError(f"trajectory must hold MNIST predictions (K, N, 1, 28, 28) at K + 1 times, got "
                         f"x0_preds {tuple(preds.shape)} and {len(times)} times")
    classifier = _shipped_unless_given(classifier)
    classifier.eval()
    K, N = preds.shape[:2]
    flat = preds.reshape(K * N, 1, 28, 28).clamp(-1, 1)
    classes = torch.cat([classifier(flat[i:i + batch]).argmax(1) for i in range(0, K * N, batch)]).reshape(K, N)
    step = torch.arange(K).unsqueeze(1).expand(K, N)
    last_change = torch.where(classes != classes[-1], step, -1).max(0).values   # -1: never read differently
    return times[:-1][last_change + 1]


def sample_quality(model, schedule, steps: int, eta=0.0, *, n: int, reference: torch.Tensor, seed: int = 0,
                   batch: int = 500, classifier=None, progress: bool = True, device="cpu") -> dict:
    """Draw ``n`` MNIST samples with :func:`~minddim.sampling.sample` on ``timesteps(T, steps)`` with ``eta``
    (DDPM: ``steps = T, eta = 1``) and score them: MNIST FID against ``reference``, classifier confidence,
    the fraction the classifier is sure of (:func:`classifier_sure_fraction`) and sampling wall-clock.
    ``reference`` is images in [-1, 1] (N, 1, 28, 28) or their :func:`classifier_features` (N, d), to compute
    those once for many calls. x_T (all ``n`` rows at once, first) and then each batch's step noise come from one
    generator seeded with ``seed``, the network run in batches of ``batch`` and each step's predicted x_0 clipped to
    [-1, 1] (``clip_x0=1.0``); under torchrun each process runs the network on its rows of every batch
    (:func:`minddim.distributed.sample_across`), drawing the same numbers. Returns a dict with
    ``n, steps, eta, seed, fid, confidence, sure, seconds`` (rounded for printing) and the samples in [-1, 1]
    under ``"images"`` (on the CPU). ``device`` (where ``model`` is, e.g. ``"cuda"``) holds x_T and the generator
    of all sampling noise: a GPU's generator draws other numbers than the CPU's, so the figures depend on the
    device type for a seed and, only up to floating-point rounding (the network's kernels depend on the batch size;
    ``tests/test_distributed.py``), on the number of processes; the classifier scores on the CPU."""
    import time

    from .distributed import sample_across
    from .sampling import timesteps

    n = check_positive_int(n, "n")
    batch = check_positive_int(batch, "batch")
    check_tensor(reference, "reference")
    classifier = _shipped_unless_given(classifier)
    if reference.dim() == 4 and reference.shape[1:] == (1, 28, 28):
        reference = classifier_features(classifier, reference)
    elif reference.dim() != 2:
        raise ValueError(f"reference must be MNIST images (N, 1, 28, 28) or their features (N, d), "
                         f"got {tuple(reference.shape)}")
    if getattr(model, "config", {}).get("channels", 1) != 1:
        raise ValueError("model must be an MNIST (1-channel) model: the MNIST FID scores 28x28 digits")
    g = torch.Generator(device=device).manual_seed(seed)
    x_T = torch.randn(n, 1, 28, 28, generator=g, device=device)
    tau = timesteps(schedule.T, steps)
    started = time.perf_counter()
    images = torch.cat([sample_across(model, x_T[i:i + batch], schedule, tau, eta, generator=g, progress=progress,
                                      clip_x0=1.0) for i in range(0, n, batch)]).cpu()
    seconds = time.perf_counter() - started
    images = images.clamp(-1, 1)
    return {"n": n, "steps": int(steps), "eta": eta, "seed": seed,
            "fid": round(frechet_distance(classifier_features(classifier, images), reference), 2),
            "confidence": round(classifier_confidence(images, classifier), 4),
            "sure": round(classifier_sure_fraction(images, classifier), 4),
            "seconds": round(seconds, 1), "images": images}
