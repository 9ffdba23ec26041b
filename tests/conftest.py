import pytest
import torch

import minddim as md


@pytest.fixture(scope="session")
def schedule():
    return md.Schedule.linear()


@pytest.fixture(scope="session")
def gaussian(schedule):
    """Correlated 2-D Gaussian data and its exact model."""
    _, means, covs = md.toy_mixture("gaussian")
    return md.GaussianDenoiser(means[0], covs[0], schedule)


@pytest.fixture(scope="session")
def mixture(schedule):
    return md.GaussianMixtureDenoiser(*md.toy_mixture("eight_gaussians"), schedule)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
