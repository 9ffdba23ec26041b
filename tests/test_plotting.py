"""The shared figures: labelled axes on shared limits, a legend where there is more than one kind of mark,
and image grids that put every image where it belongs."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from minddim import plotting  # noqa: E402


def test_scatter_panels_share_labelled_axes():
    points = [torch.randn(50, 2, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    fig = plotting.scatter_panels(points, ["a", "b", "c"], lim=3.5, reference=torch.zeros(5, 2), suptitle="s")
    axes = fig.axes
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["a", "b", "c"]
    assert all(ax.get_xlim() == (-3.5, 3.5) and ax.get_ylim() == (-3.5, 3.5) for ax in axes)
    assert all(ax.get_xlabel() for ax in axes) and axes[0].get_ylabel()
    assert list(axes[0].get_xticks()) == [-3, 0, 3]
    plt.close(fig)


def test_trajectories_and_animation_have_labelled_axes_and_a_legend():
    xs = torch.randn(20, 8, 2, generator=torch.Generator().manual_seed(0)).cumsum(0) * 0.1
    ax = plotting.trajectories(xs, n=4, lim=2.0, title="paths")
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "paths"
    assert len(ax.lines) == 4 and ax.get_legend() is not None and ax.get_xlim() == (-2.0, 2.0)
    plt.close(ax.figure)
    anim = plotting.animate_points([np.zeros((3, 2)), np.ones((3, 2))], ["t = 1", "t = 2"])
    ax = anim._fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel()
    anim.to_jshtml()                       # rendered, as the notebook does (and so deleted without a warning)


def test_image_grid_places_each_image_in_its_cell():
    images = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0)])
    grid = plotting.image_grid(images, nrow=2, pad=1)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1, 1) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 4, 0] == 128 and grid[4, 1, 0] == 255   # black, mid-grey, white
    assert grid[0, 0, 0] == 255                                                  # padding is white


@pytest.mark.parametrize("channels", [1, 3])
def test_show_images_draws_the_grid_with_its_title(channels):
    images = torch.linspace(-1, 1, 4 * channels * 5 * 5).reshape(4, channels, 5, 5)
    ax = plotting.show_images(images, "four images", 2)
    drawn = ax.get_images()[0].get_array()
    expected = plotting.image_grid(images, 2)
    assert ax.get_title() == "four images" and not ax.axison
    assert np.array_equal(np.asarray(drawn), expected[..., 0] if channels == 1 else expected)
    if channels == 1:
        assert ax.get_images()[0].get_clim() == (0, 255)
    plt.close(ax.figure)


@pytest.mark.parametrize("value, bound, text", [(2.6e-14, 1e-12, "< 1e-12"), (-3e-16, 1e-12, "< 1e-12"),
                                                (0.0, 1e-9, "< 1e-9"), (7.2e-7, 1e-5, "< 1e-5"),
                                                (2e-5, 1e-5, "2.0e-05 (NOT below 1e-5)")])
def test_below_prints_a_bound_and_shows_a_real_discrepancy(value, bound, text):
    assert plotting.below(value, bound) == text


def test_below_refuses_a_bound_that_is_not_positive():
    with pytest.raises(ValueError, match="bound"):
        plotting.below(1e-14, 0)
