"""Guidance: asking a diffusion model for a class, as eps-models for the one sampler.

Conditional eps-models.  A class-conditional model is a callable ``model(x_t, t, y) -> eps_hat`` with an attribute
``num_classes = K``; ``y`` is an integer tensor of shape ``(B,)`` (or one int for every row) holding a class
``0..K-1`` or the **null label** ``K`` ("no class": :func:`null_label`).  The null label is Ho & Salimans' null
token: "for the unconditional model we can simply input a null token ∅ for the class identifier c when
predicting the score", eps_theta(z) = eps_theta(z, c = ∅), and a network learns both by "randomly setting c to the
unconditional class identifier ∅ with some probability p_uncond" (Ho & Salimans 2022, sec. 3.2, Algorithm 1).
Taking ``K`` for it (the row after the K classes' rows of an embedding table) means ``y`` indexes a table of K + 1
rows directly: :class:`minddim.UNet` with ``num_classes=K``, :class:`minddim.analytic.ConditionalMixtureDenoiser`.

What this module returns is an ordinary unconditional eps-model ``(x_t, t) -> eps_hat``, so that
:func:`minddim.sample`, :func:`minddim.heun` and :func:`minddim.inpaint` (and every other function taking a model)
run guided sampling unchanged: no second sampler.

- :func:`classifier_free`: ``(1 + w) eps(x_t, t, y) - w eps(x_t, t, ∅)`` (Ho & Salimans 2022, eq. 6).
- :func:`classifier_guidance`: ``eps(x_t, t) - s sqrt(1 - bar-alpha_t) grad_x log p_phi(y | x_t, t)``
  (Dhariwal & Nichol 2021, eq. 14, with the gradient scale s of their sec. 4.3).

In the score view (:mod:`minddim.score`, score = -eps / sqrt(1 - bar-alpha_t)) both add a classifier's gradient to
the score: classifier guidance an explicit, noise-aware classifier's; classifier-free guidance the implicit
classifier p(y | x_t) ∝ p(x_t | y) / p(x_t), whose gradient with exact scores is
-(eps*(x_t, y) - eps*(x_t)) / sqrt(1 - bar-alpha_t) (Ho & Salimans 2022, sec. 3.2).  With exact models the two
coincide: classifier-free guidance at w is classifier guidance at scale w of the conditional model, and at scale
1 + w of the unconditional one (their secs. 3.1-3.2), which the tests check on the toy mixture
(:class:`minddim.analytic.ConditionalMixtureDenoiser`).
"""

from __future__ import annotations

import torch

from ._validate import check_finite_real, check_labels, check_tensor, labels_for
from .schedules import Schedule, as_schedule


def null_label(model) -> int:
    """The null label ("no class") of a class-conditional eps-model: its ``num_classes`` K, i.e. one past the
    last class 0..K-1.  Raises a TypeError for a model without classes (an unconditional eps-model)."""
    return _num_classes(model, "model")


def is_conditional(model) -> bool:
    """Whether ``model`` is a class-conditional eps-model ``model(x_t, t, y)``: it says how many classes it has
    (an int ``num_classes`` >= 1). :class:`minddim.UNet` built without ``num_classes`` is not."""
    k = getattr(model, "num_classes", None)
    return isinstance(k, int) and not isinstance(k, bool) and k >= 1


def _num_classes(model, name: str, why: str = "") -> int:
    if not is_conditional(model):
        raise TypeError(f"{name} must be a class-conditional eps-model {name}(x_t, t, y) with an int attribute "
                        f"num_classes >= 1 (e.g. md.UNet(..., num_classes=10)); got {type(model).__name__} "
                        f"with num_classes={getattr(model, 'num_classes', None)!r}, an unconditional model{why}")
    return int(model.num_classes)


def _batch_time(t, x: torch.Tensor) -> torch.Tensor:
    """t (an int, or an integer tensor of shape () or (B,)) as a (B,) long tensor on x's device, as the samplers
    pass it."""
    t = torch.as_tensor(t, device=x.device).reshape(-1)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must hold integer times 1..T, got dtype {t.dtype}")
    t = t.long()
    if t.numel() == 1:
        return t.expand(x.shape[0])
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"t has shape {tuple(t.shape)} but x_t has shape {tuple(x.shape)}: "
                         f"a per-sample t needs one entry per row of x_t")
    return t


def classifier_free(model, y, w):
    """Classifier-free guidance (Ho & Salimans 2022, sec. 3.2, eq. 6; Algorithm 2) as an eps-model:

        eps_tilde(x_t, t) = (1 + w) eps_theta(x_t, t, y) - w eps_theta(x_t, t, ∅)

    ``model`` is a class-conditional eps-model ``model(x_t, t, y)`` whose null label ∅ is its ``num_classes``
    (module docstring); ``y`` the requested classes, an int or a (B,) integer tensor in 0..K-1; ``w`` the guidance
    strength, a finite real number: ``w = 0`` is the plain conditional model, ``w > 0`` guides (Ho & Salimans sweep
    w = 0 .. 4), ``w = -1`` is the unconditional model.

    **The convention learners trip over:** diffusers' pipelines take ``guidance_scale`` s and compute
    ``eps_u + s (eps_c - eps_u)`` (their docs: s "is defined as w of equation 2. of Imagen Paper", and guidance
    "is enabled by setting guidance_scale > 1"). That s is ``1 + w`` here: diffusers' ``guidance_scale = 7.5`` is
    ``w = 6.5``, and its ``guidance_scale = 1`` (no guidance) is ``w = 0``.

    The two evaluations run as **one** batched forward pass: the batch [x_t; x_t] with labels [y; ∅], split in two
    (each guided step "requires evaluating the denoising model twice", Ho & Salimans sec. 4.3; batched, that is
    one call on a batch twice as large). Returns a callable ``(x_t, t) -> eps_tilde`` for any sampler.
    """
    K = _num_classes(model, "model", ": classifier-free guidance needs a model trained with classes and the "
                                     "null label (label dropout); use classifier_guidance for an unconditional one")
    w = check_finite_real(w, "w")
    y = check_labels(y, K, "y", allow_null=False)

    def guided(x_t: torch.Tensor, t) -> torch.Tensor:
        check_tensor(x_t, "x_t")
        labels = labels_for(y, x_t)
        tt = _batch_time(t, x_t)
        null = torch.full_like(labels, K)
        out = model(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([labels, null]))
        if not isinstance(out, torch.Tensor) or out.shape != (2 * x_t.shape[0], *x_t.shape[1:]):
            raise ValueError(f"model(x_t, t, y) must return a tensor shaped like its x_t "
                             f"{(2 * x_t.shape[0], *x_t.shape[1:])}, got {getattr(out, 'shape', type(out).__name__)}")
        eps_cond, eps_uncond = out.chunk(2)
        return (1 + w) * eps_cond - w * eps_uncond

    guided.__doc__ = f"Classifier-free guided eps-model (x_t, t): w = {w:g} (diffusers' guidance_scale = {1 + w:g})."
    return guided


def classifier_guidance(model, classifier, y, scale, schedule: Schedule):
    """Classifier guidance for DDIM and every sampler of the package (Dhariwal & Nichol 2021, sec. 4.2, eq. 14;
    Algorithm 2), with their gradient scale s (sec. 4.3), as an eps-model:

        eps_hat(x_t, t) = eps_theta(x_t, t) - s sqrt(1 - bar-alpha_t) grad_{x_t} log p_phi(y | x_t, t)

    which is eps_theta minus sqrt(1 - bar-alpha_t) times the score of p_phi(y | x_t)^s: it samples (approximately)
    p(x_t) p_phi(y | x_t)^s (their eq. 12-13 and sec. 4.3: "s · grad log p(y|x) = grad log (1/Z) p(y|x)^s").
    Ho & Salimans (2022, sec. 3.1, arXiv:2207.12598) write the same modification with w for s and sigma_lambda for
    sqrt(1 - bar-alpha_t) (their 2021 workshop version prints it with a plus sign).

    - ``model``: an eps-model ``model(x_t, t)``; or a class-conditional one (``num_classes`` set), which is then
      evaluated at ``y``: Dhariwal & Nichol guide conditional models too (their Table 4).  To guide the
      unconditional half of a conditional model, pass ``lambda x, t: model(x, t, null_label(model))``.
    - ``classifier``: a noise-aware classifier ``classifier(x_t, t) -> logits`` of shape (B, K), with t the
      integer time 1..T; log p_phi(y | x_t, t) is the log-softmax of its logits, and its gradient in x_t is taken
      by autograd (locally enabled, so the guided model works under the samplers' ``torch.no_grad()`` and under
      ``torch.inference_mode()``).
    - ``y``: the requested classes, an int or a (B,) integer tensor of classes 0..K-1 of the classifier.
    - ``scale``: s, a finite real number; s = 1 is the plain Bayes rule (with exact models, exactly the
      class-conditional model: the tests check it to 1e-10), s > 1 sharpens.
    - ``schedule``: the :class:`minddim.Schedule` whose bar-alpha_t the sampler uses.

    Costs one evaluation of the model and one forward and backward pass of the classifier per call.
    """
    schedule = as_schedule(schedule)
    scale = check_finite_real(scale, "scale")
    if not callable(classifier):
        raise TypeError(f"classifier must be a callable classifier(x_t, t) -> logits, got {type(classifier).__name__}")
    conditional = is_conditional(model)
    if conditional:
        y = check_labels(y, int(model.num_classes), "y", allow_null=False)
    else:
        y = check_labels(y, None, "y")          # checked against the classifier's logits at call time

    def guided(x_t: torch.Tensor, t) -> torch.Tensor:
        check_tensor(x_t, "x_t")
        labels = labels_for(y, x_t)
        tt = _batch_time(t, x_t)
        eps = model(x_t, tt, labels) if conditional else model(x_t, tt)
        grad = class_log_prob_grad(classifier, x_t, tt, labels)
        return eps - scale * (1 - schedule.at(schedule.alpha_bars, tt, x_t)).sqrt() * grad.to(eps.dtype)

    guided.__doc__ = f"Classifier-guided eps-model (x_t, t): gradient scale s = {scale:g}."
    return guided


def class_log_prob_grad(classifier, x_t: torch.Tensor, t, y) -> torch.Tensor:
    """grad_{x_t} log p_phi(y | x_t, t) by autograd through ``classifier(x_t, t) -> logits`` (log p is the
    log-softmax of the logits at each row's class ``y``), in the dtype of ``x_t``.  Gradients are enabled locally,
    inside ``torch.no_grad()`` or ``torch.inference_mode()`` too; nothing is accumulated in the classifier's
    parameters."""
    check_tensor(x_t, "x_t")
    if x_t.dim() < 1:
        raise ValueError("x_t must have a batch dimension, got a scalar")
    tt = _batch_time(t, x_t)
    if isinstance(y, torch.Tensor) and y.dim() == 1 and y.shape[0] == x_t.shape[0] and not y.is_floating_point():
        labels = y
    else:
        labels = labels_for(check_labels(y, None, "y"), x_t)
    with torch.inference_mode(False), torch.enable_grad():
        # clones: tensors made under inference_mode cannot take part in autograd
        x = x_t.detach().clone().requires_grad_(True)
        logits = classifier(x, tt.clone())
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            raise ValueError(f"classifier(x_t, t) must return logits of shape (batch, K) = ({x.shape[0]}, K), "
                             f"got {getattr(logits, 'shape', type(logits).__name__)}")
        K = logits.shape[1]
        if int(labels.max()) >= K:
            raise ValueError(f"y must hold classes 0..{K - 1} of the classifier (its logits have {K} columns), "
                             f"got values up to {int(labels.max())}")
        log_p = torch.log_softmax(logits, 1).gather(1, labels.clone().to(logits.device)[:, None]).sum()
        (grad,) = torch.autograd.grad(log_p, x)
    return grad.to(x_t.dtype)


__all__ = ["classifier_free", "classifier_guidance", "class_log_prob_grad", "is_conditional", "null_label"]
