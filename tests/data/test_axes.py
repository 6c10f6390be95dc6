"""Images that know their axes: TIFF series axes, every channel kept, --channels, pixel size."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import shared_path
from PIL import Image

from unet_tf.cli.options import parse_channels
from unet_tf.config import DataConfig, RunConfig
from unet_tf.data.formats.registry import read_dataset
from unet_tf.data.io import read_image, read_image_and_pixel_size, select_channels
from unet_tf.errors import UserError

H, W = 24, 40


def planes(n: int) -> np.ndarray:
    """(n, H, W) uint16 planes whose values name their channel: plane c holds c * 1000 + x."""
    x = np.arange(W, dtype=np.uint16)
    return np.stack([np.broadcast_to(c * 1000 + x, (H, W)) for c in range(n)]).astype(np.uint16)


def test_yx_and_yxc(tmp_path):
    tifffile.imwrite(tmp_path / "yx.tif", planes(1)[0])
    assert read_image(tmp_path / "yx.tif").shape == (H, W)
    rgb = np.moveaxis(planes(3), 0, -1).astype(np.uint8)
    tifffile.imwrite(tmp_path / "yxc.tif", rgb, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "yxc.tif"), rgb)


@pytest.mark.parametrize("channels", [2, 4])
def test_channel_first_tiffs_keep_every_channel(tmp_path, channels):
    """Fiji's plain (C, Y, X) TIFF: channels-last out, none dropped, in order."""
    stack = planes(channels)
    tifffile.imwrite(tmp_path / "cyx.tif", stack)
    out = read_image(tmp_path / "cyx.tif")
    assert out.shape == (H, W, channels)
    np.testing.assert_array_equal(np.moveaxis(out, -1, 0), stack)


@pytest.mark.parametrize("channels", [2, 4])
def test_channel_last_tiffs_keep_every_channel(tmp_path, channels):
    yxc = np.moveaxis(planes(channels), 0, -1)
    tifffile.imwrite(tmp_path / "yxc.tif", yxc, photometric="minisblack", planarconfig="contig")
    np.testing.assert_array_equal(read_image(tmp_path / "yxc.tif"), yxc)


def test_rgba_png_drops_only_its_alpha(tmp_path):
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png").shape == (H, W, 3)


def test_time_series_in_a_single_image_reader_is_one_line_error(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", planes(5), imagej=True, metadata={"axes": "TYX"})
    with pytest.raises(UserError, match=r"t\.tif is a stack with axes TYX \(T=5") as info:
        read_image(tmp_path / "t.tif")
    assert "\n" not in str(info.value) and "--format video" in str(info.value)


def test_ambiguous_bare_stack_names_its_shape(tmp_path):
    tifffile.imwrite(tmp_path / "q.tif", planes(10))
    with pytest.raises(UserError, match=r"shape \(10, 24, 40\) and no axis metadata"):
        read_image(tmp_path / "q.tif")


def test_imagej_hyperstack_with_singleton_time_and_pixel_size(tmp_path):
    stack = planes(3)[None]  # T=1, C=3
    tifffile.imwrite(
        tmp_path / "h.tif",
        stack,
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.25),  # (x, y) pixels per µm
        metadata={"axes": "TCYX", "unit": "um"},
    )
    image, pixel_size = read_image_and_pixel_size(tmp_path / "h.tif")
    np.testing.assert_array_equal(np.moveaxis(image, -1, 0), stack[0])
    assert pixel_size == pytest.approx((0.25, 0.5))  # (y, x)


def test_ome_tiff_pixel_size_in_nanometres(tmp_path):
    path = tmp_path / "x.ome.tif"
    meta = {"axes": "CYX", "PhysicalSizeX": 130, "PhysicalSizeXUnit": "nm"}
    meta |= {"PhysicalSizeY": 0.2, "PhysicalSizeYUnit": "µm"}
    tifffile.imwrite(path, planes(2), ome=True, metadata=meta)
    image, pixel_size = read_image_and_pixel_size(path)
    assert image.shape == (H, W, 2)
    assert pixel_size == pytest.approx((0.2, 0.13))


def test_screen_resolution_is_not_a_pixel_size(tmp_path):
    Image.fromarray(planes(1)[0].astype(np.uint8)).save(tmp_path / "s.tif", dpi=(72, 72))
    assert read_image_and_pixel_size(tmp_path / "s.tif")[1] is None


def test_channels_option_picks_and_orders_channels(tmp_path):
    assert parse_channels("0, 2") == [0, 2]
    for bad in ("a", "1,1", "-1", ""):
        with pytest.raises(UserError, match="--channels"):
            parse_channels(bad)
    image = np.moveaxis(planes(3), 0, -1)
    np.testing.assert_array_equal(select_channels(image, [2, 0])[..., 0], image[..., 2])
    with pytest.raises(UserError, match=r"has 3 channel\(s\).*0,3"):
        select_channels(image, [0, 3], "x.tif")


def test_read_dataset_applies_data_channels(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(2):
        tifffile.imwrite(root / "images" / f"{i}.tif", planes(3))
        Image.fromarray(np.full((H, W), 255, np.uint8)).save(root / "masks" / f"{i}.png")
    samples = read_dataset(root, DataConfig(channels=[0, 2]))
    assert samples[0].image.shape == (H, W, 2)
    assert samples[0].image[0, 5, 1] == 2005  # channel 2, x = 5
    bad = RunConfig(data=DataConfig(channels=[1, 1]))
    with pytest.raises(UserError, match="channels"):
        bad.validate()


def test_real_fluorescence_and_drive_tiffs():
    nuclei = read_image(shared_path("data", "dsb-nuclei", "img2d.tif"))
    assert nuclei.shape == (512, 512) and nuclei.dtype == np.uint16
    drive = read_image(shared_path("data", "drive", "training", "images", "21_training.tif"))
    assert drive.shape == (584, 565, 3) and drive.dtype == np.uint8
