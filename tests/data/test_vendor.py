"""CZI, LIF and ND2 through bioio: dimensions, channels, pixel size and missing plugins.

No CZI, LIF or ND2 writer exists here, so the bioio path is exercised with bioio's
OME-TIFF plugin on OME-TIFFs the tests write: bioio gives every plugin's image the same
TCZYX(S) dimensions and micrometre pixel sizes, which is all the shared code reads.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile

from unet_tf.data import vendor
from unet_tf.data.formats.folder import read_folder
from unet_tf.data.io import IMAGE_SUFFIXES, is_image_file, read_image, read_vendor
from unet_tf.errors import UserError

ome_tiff = pytest.importorskip("bioio_ome_tiff", reason="needs bioio-ome-tiff: .[czi]")


def write_ome(path, array: np.ndarray, axes: str, pixel_um: float | None = 0.65):
    metadata = {"axes": axes}
    if pixel_um:
        metadata |= {"PhysicalSizeX": pixel_um, "PhysicalSizeY": pixel_um}
    tifffile.imwrite(path, array, ome=True, metadata=metadata)
    return path


def test_channels_go_last_and_the_pixel_size_is_read(tmp_path):
    # 3 channels of 20 x 30 px, each channel a constant so the order is checkable
    array = np.stack([np.full((20, 30), 10 * (c + 1), np.uint16) for c in range(3)])
    path = write_ome(tmp_path / "cells.ome.tif", array, "CYX", pixel_um=0.325)
    image, pixel_size = read_vendor(path, ome_tiff.Reader)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint16
    assert [int(image[0, 0, c]) for c in range(3)] == [10, 20, 30]
    assert pixel_size == pytest.approx((0.325, 0.325))
    np.testing.assert_array_equal(image, read_image(path))  # tifffile reads it the same


def test_a_single_plane_of_a_5d_file_is_a_grey_image(tmp_path):
    plane = np.arange(12 * 16, dtype=np.uint8).reshape(1, 1, 1, 12, 16)
    path = write_ome(tmp_path / "one.ome.tif", plane, "TCZYX", pixel_um=None)
    image, pixel_size = read_vendor(path, ome_tiff.Reader)
    assert image.shape == (12, 16) and pixel_size is None
    np.testing.assert_array_equal(image, plane[0, 0, 0])


@pytest.mark.parametrize(
    "axes, shape, found", [("ZYX", (3, 8, 8), "Z=3"), ("TYX", (2, 8, 8), "T=2")]
)
def test_a_stack_is_refused_naming_the_fix(tmp_path, axes, shape, found):
    path = write_ome(tmp_path / "stack.ome.tif", np.zeros(shape, np.uint8), axes)
    with pytest.raises(UserError, match=f"is a stack .*{found}.*save one plane per file"):
        read_vendor(path, ome_tiff.Reader)


@pytest.mark.parametrize("suffix, extra", [(".czi", "czi"), (".lif", "lif"), (".nd2", "nd2")])
def test_a_missing_plugin_names_the_extra(tmp_path, monkeypatch, suffix, extra):
    module = vendor.PLUGINS[suffix][0]
    monkeypatch.setitem(sys.modules, module, None)  # import now fails
    with pytest.raises(UserError, match=rf'pip install "unet-tf\[{extra}\]"') as error:
        read_image(tmp_path / f"scan{suffix}")
    assert "\n" not in str(error.value)


def test_vendor_suffixes_are_image_files_and_a_damaged_one_says_so(tmp_path):
    assert {".czi", ".lif", ".nd2"} <= set(IMAGE_SUFFIXES)
    broken = tmp_path / "scan.czi"  # a truncated download: not a CZI at all
    broken.write_bytes(b"\x00" * 64)
    assert is_image_file(broken)
    pytest.importorskip("bioio_czi", reason="needs bioio-czi: .[czi]")
    with pytest.raises(UserError, match=r"cannot read .*scan\.czi.*replace or remove"):
        read_image(broken)


def test_a_folder_dataset_lists_vendor_files(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "a.nd2").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "bioio_nd2", None)
    with pytest.raises(UserError, match=r"unet-tf\[nd2\]"):  # listed, then read
        read_folder(tmp_path, require_masks=False)
