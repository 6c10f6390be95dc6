"""The folder format: pairing, formats, bit depths and every bad-input error."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import write_folder_dataset
from PIL import Image

from unet_tf.config import DataConfig
from unet_tf.data.formats.folder import read_folder
from unet_tf.data.formats.registry import read_dataset, sample_data_dir
from unet_tf.data.io import read_image
from unet_tf.data.targets import make_target
from unet_tf.errors import UserError


def test_reads_pairs_by_stem_including_spaces(folder_dataset):
    samples = read_folder(folder_dataset)
    assert [s.name for s in samples] == [f"img {i:02d}" for i in range(6)]
    assert samples[0].image.shape == (64, 64, 1)
    assert samples[0].mask.shape == (64, 64)


def test_accepts_image_and_label_folder_names(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=2)
    (root / "images").rename(root / "image")
    (root / "masks").rename(root / "label")
    assert len(read_folder(root)) == 2


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp", ".gif", ".jpg"])
def test_reads_every_format(tmp_path, suffix):
    array = (np.arange(32 * 48) % 251).astype(np.uint8).reshape(32, 48)
    path = tmp_path / f"x{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, array, compression="lzw")
    else:
        Image.fromarray(array).save(path)
    out = read_image(path)
    assert out.shape == (32, 48)
    if suffix != ".jpg":  # lossy
        np.testing.assert_array_equal(out, array)


def test_16_bit_png_and_tiff_keep_their_values(tmp_path):
    array = (np.arange(20 * 30, dtype=np.uint16) * 100).reshape(20, 30)
    Image.fromarray(array).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "a.tif", array)
    for name in ("a.png", "a.tif"):
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, array)


def test_rgb_and_palette_gif_give_real_values(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert read_image(tmp_path / "c.png").shape == (8, 8, 3)
    grey = np.zeros((8, 8), np.uint8)
    grey[2:4] = 255
    Image.fromarray(grey).convert("P").save(tmp_path / "m.gif")
    out = read_image(tmp_path / "m.gif")
    assert set(np.unique(out)) == {0, 255}


def test_jpeg_noise_values_binarise_to_foreground():
    mask = np.array([[0, 1], [2, 0]], np.uint8)  # HeLa-style {0, 1, 2}
    np.testing.assert_array_equal(make_target(mask, 1, 0.0)[..., 0], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(make_target(mask, 1, 1.0)[..., 0], [[0, 0], [1, 0]])


def test_missing_folder(tmp_path):
    with pytest.raises(UserError, match=r"data not found: .*nope"):
        read_dataset(tmp_path / "nope", DataConfig())


def test_no_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(UserError, match="no images in"):
        read_folder(tmp_path)


def test_no_masks_folder(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=2)
    for p in (root / "masks").iterdir():
        p.unlink()
    (root / "masks").rmdir()
    with pytest.raises(UserError, match="has no masks/ folder"):
        read_folder(root)


def test_images_without_masks_are_listed(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=9)
    for i in range(7):
        (root / "masks" / f"img {i:02d}.png").unlink()
    with pytest.raises(UserError) as err:
        read_folder(root)
    message = str(err.value)
    assert "7 image(s)" in message and "img 00.png" in message and "(and 2 more)" in message
    assert "\n" not in message


def test_mask_without_image(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=2)
    (root / "images" / "img 01.png").unlink()
    with pytest.raises(UserError, match=r"mask\(s\) .* have no image.*img 01.png"):
        read_folder(root)


def test_corrupt_file_is_named(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=2)
    (root / "images" / "img 01.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UserError, match=r"cannot read .*img 01.png"):
        read_folder(root)


def test_mask_size_mismatch(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=2)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / "img 01.png")
    with pytest.raises(UserError, match=r"mask .*img 01.png is 12x10 but its image"):
        read_folder(root)


def test_mixed_channel_counts(tmp_path):
    root = write_folder_dataset(tmp_path / "d", n=3)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "images" / "img 02.png")
    with pytest.raises(UserError, match=r"mix channel counts.*img 02.png \(3\)"):
        read_dataset(root, DataConfig())


def test_class_values_out_of_range():
    with pytest.raises(UserError, match=r"needs class indices 0\.\.2"):
        make_target(np.array([[0, 5]]), 3, 0.0, "m.png")


def test_bundled_sample_is_real_isbi_data():
    samples = read_dataset(None, DataConfig())
    assert sample_data_dir().name == "isbi2012"
    assert len(samples) == 6
    assert samples[0].image.shape == (512, 512, 1)
    assert set(np.unique(samples[0].mask)) == {0, 255}
