"""InceptionResNetV2: the shared encoder checks and stable names for its stem skips."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from encoder_tester import EncoderTester


class TestInceptionResNetV2(EncoderTester):
    backbone = "inceptionresnetv2"
    min_size = 75
    odd_shape = (97, 131)  # small: every call of this network is slow
    too_small = r"too small for the inceptionresnetv2 encoder.*75 px"

    @pytest.fixture(scope="class")
    def grey(self) -> keras.Model:
        keras.layers.Activation("relu")  # shifts Keras's automatic names before the build
        return self.build_grey()

    def test_stem_skips_have_stable_names_and_the_paper_sizes(self, grey):
        encoder = grey.get_layer("encoder")
        names = [t._keras_history.operation.name for t in encoder.outputs]
        stem = ["stem_conv1_ac", "stem_conv5_ac"]
        assert names == [*stem, "block35_10_ac", "block17_20_ac", "conv_7b_ac"]
        sizes = [f.shape[1] for f in encoder(np.zeros((1, 256, 256, 3), np.float32))]
        assert sizes == [127, 60, 29, 14, 6]
