"""Inr2Array: latents are identical for hidden-permuted SIRENs, spatial decoding draws each pixel with its cell's
SIREN, both decoders produce SIRENs of the input's shape, bad sizes are named; editing targets equal OpenCV's."""
import numpy as np
import pytest
import torch

from nft import Inr2Array
from nft.editing import OPS, transform_images
from nft.inr2array import HyperDecoder, LatentClassifier
from nft.siren import grid, init_sirens, siren_forward
from nft.weight_space import random_hidden_permutations

WIDTHS = (2, 16, 16, 1)


def small(**kw):
    kw = {"n_latents": 4} | kw
    return Inr2Array(WIDTHS, (8, 8), channels=16, depth=1, fourier_m=8, dec_hidden=32, w0_first=8.0, **kw).eval()


@pytest.mark.parametrize("dec_type", ["sitzmann", "additive"])
def test_latents_are_invariant_and_renders_match(dec_type):
    torch.manual_seed(0)
    model, x = small(dec_type=dec_type), init_sirens(3, WIDTHS)
    perms = random_hidden_permutations(WIDTHS, batch=3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (3, 4, 16)
        assert torch.allclose(model.encode(x.permute(perms)), z, atol=1e-5)
        assert torch.allclose(model(x.permute(perms)), model(x), atol=1e-5)  # the function-space check


def test_spatial_decoding_uses_each_pixels_cell():
    torch.manual_seed(0)
    model = small()
    z = torch.randn(2, 4, 16)
    with torch.no_grad():
        img = model.render(z)
        sirens = model.decoder(z.flatten(0, 1))
        full = siren_forward(sirens, grid(8, 8), 8.0, 30.0).view(2, 4, 64, 1)  # every latent's SIREN everywhere
    rows, cols = torch.arange(64) // 8, torch.arange(64) % 8
    cell = (rows // 4) * 2 + cols // 4  # 2 x 2 cells of 4 x 4 pixels
    expect = full[:, cell, torch.arange(64)]
    assert torch.allclose(img, expect, atol=1e-6)


def test_decoders_and_classifier_shapes_and_errors():
    z = torch.randn(5, 16)
    for kind in ("sitzmann", "additive"):
        p = HyperDecoder(WIDTHS, 16, 32, 2, kind)(z)
        assert p.widths == WIDTHS and p.batch == 5 and p.channels == 1
    assert LatentClassifier(16, 4, 3, d=32, depth=1, ff=64, head_hidden=32)(torch.randn(2, 4, 16)).shape == (2, 3)
    with pytest.raises(ValueError, match="square"):
        small(n_latents=3)
    with pytest.raises(ValueError, match="equal cells"):
        Inr2Array(WIDTHS, (8, 8), channels=16, depth=1, fourier_m=8, n_latents=9)
    with pytest.raises(ValueError, match="sitzmann"):
        HyperDecoder(WIDTHS, 16, kind="film")


def test_editing_targets_equal_opencv():
    cv2 = pytest.importorskip("cv2")
    img = torch.rand(4, 8, 8, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1
    k = np.ones((3, 3), np.uint8)
    ref = {"dilate": lambda im: cv2.dilate(im, k), "erode": lambda im: cv2.erode(im, k),
           "gradient": lambda im: cv2.morphologyEx(im, cv2.MORPH_GRADIENT, k),
           "sharpen": lambda im: cv2.filter2D(im, -1, np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)),
           "contrast": lambda im: (im - 0.5) * 1.5 + 0.5}
    for op in OPS:
        want = np.stack([np.clip(ref[op](im), 0, 1) * 2 - 1 for im in ((img.numpy() + 1) / 2)[..., 0]])
        assert np.abs(transform_images(img, op)[..., 0].numpy() - want).max() < 1e-5, op
    with pytest.raises(ValueError, match="editing.op"):
        transform_images(img, "blur")
