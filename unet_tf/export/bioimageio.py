"""``NAME.zip``: a bioimage.io model package (spec 0.5), for deepImageJ, ilastik and
bioimageio.core.

The package is the zip that the bioimage.io tools share, upload and install (deepImageJ's
"Install model" and ilastik's Neural Network Workflow take the zip itself): ``rdf.yaml``,
the TensorFlow SavedModel zipped as the spec's ``tensorflow_saved_model_bundle``, a test
input and the output these weights compute on it (``.npy``), a generated README.md, a
cover and the run's ``unet_tf.yaml``. The input is (batch, y, x, channel) float32 of
parametrized size; the output has the input's size. A model that runs at full resolution
(``--patch``) also gets ONNX weights when tf2onnx is installed: its bare network is then
all the SavedModel computes, so both weights give the same output.

The SavedModel's ``serve`` endpoint (also ``serving_default``) is the one of
``--format savedmodel``: it standardises each image and channel inside the network and,
for a model trained on resized images, resizes to the training size and back, so any
image size can be given whole. The spec's ``zero_mean_unit_variance`` over (y, x) is
declared as well: it is what the network computes first, so applying it again changes
nothing, and it tells a consumer the model's intensity handling. The endpoint returns
``{"probabilities": ...}`` because bioimageio.core reads the outputs from a dict.

bioimageio.core is an optional extra and slow to import, so it is imported only inside
the functions that write and validate a package. Reopening a package for ``predict``
needs only TensorFlow: it loads the SavedModel's ``network`` endpoint from the zip.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import tensorflow as tf
import yaml

from unet_tf.data.formats.registry import sample_data_dir
from unet_tf.data.io import is_image_file, read_image, select_channels, write_png
from unet_tf.data.targets import TARGETS
from unet_tf.errors import UserError, first_line
from unet_tf.export.common import Verification, check_difference, difference, float32_copy
from unet_tf.export.onnx import write_onnx
from unet_tf.export.savedmodel import SavedModelNetwork, write_archive
from unet_tf.viz import display_rgb

if TYPE_CHECKING:  # a runtime import would cycle: the predictor opens exports
    from unet_tf.inference.predictor import Predictor

SUFFIX = ".zip"
RUNTIME = "bioimageio.core"
INSTALL = 'pip install "unet-tf[bioimageio]"'
RDF_NAMES = ("rdf.yaml", "bioimageio.yaml")  # what makes a zip a bioimage.io package
INPUT_ID, OUTPUT_ID = "raw", "probabilities"
WEIGHTS_FILE = "tf_saved_model_bundle.zip"
ONNX_FILE = "weights.onnx"
MAX_TEST_SIDE = 512  # px: the test image is cropped to this, to keep the package small
COVER_HEIGHT = 256  # px: the cover shows the test image beside its output (2:1, as asked)
# The U-Net paper: cited by default, since every model this package trains is a U-Net.
UNET_CITATION = {
    "text": "Ronneberger, Fischer & Brox. U-Net: Convolutional Networks for Biomedical "
    "Image Segmentation. MICCAI 2015",
    "doi": "10.1007/978-3-319-24574-4_28",
}
DEFAULT_LICENSE = "CC-BY-4.0"
DEFAULT_TAGS = ["unet", "segmentation", "2d", "tensorflow", "unet-tf"]
META_FIELDS = {
    "name": "the model's name",
    "description": "one paragraph on what the model segments",
    "authors": "list of {name, affiliation, email, github_user, orcid}",
    "cite": "list of {text, doi} or {text, url}",
    "license": "SPDX licence id, e.g. CC-BY-4.0 or MIT",
    "tags": "list of words",
    "version": "the model's version, e.g. 1.0.0",
    "git_repo": "https URL of the code or data repository",
    "covers": "list of PNG/JPEG images (paths relative to the YAML file)",
    "test_image": "an image of the kind the model segments (path relative to the YAML file)",
}


@dataclass(frozen=True)
class Meta:
    """What ``--meta FILE.yaml`` says about the model; defaults where the spec allows."""

    name: str = "unet-tf 2-D U-Net segmentation"
    description: str = ""  # empty: generated from the run's config
    authors: list[dict[str, str]] = field(default_factory=list)  # empty: the user's login
    cite: list[dict[str, str]] = field(default_factory=lambda: [dict(UNET_CITATION)])
    license: str = DEFAULT_LICENSE
    tags: list[str] = field(default_factory=lambda: list(DEFAULT_TAGS))
    version: str | None = None
    git_repo: str | None = None
    covers: list[Path] = field(default_factory=list)  # empty: input | output, generated
    test_image: Path | None = None  # None: the bundled ISBI 2012 test slice


def read_meta(path: Path | None) -> Meta:
    """Check ``--meta FILE.yaml`` field by field; each error names the field and the fix."""
    if path is None:
        return Meta()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        reason = first_line(exc)
        raise UserError(f"--meta {path}: cannot read it ({reason}); fix the YAML") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        fields = ", ".join(META_FIELDS)
        raise UserError(f"--meta {path} must be a YAML mapping of fields ({fields})")
    unknown = sorted(set(map(str, raw)) - set(META_FIELDS))
    if unknown:
        raise UserError(
            f"--meta {path}: unknown field {unknown[0]!r}; the fields are {', '.join(META_FIELDS)}"
        )

    def bad(name: str, what: str) -> UserError:
        example = _EXAMPLES[name.split("[")[0]]  # authors[2] is shown an authors example
        return UserError(f"--meta {path}: {name} must be {what}, e.g. {example}")

    values: dict[str, Any] = {}
    for name in ("name", "description", "license", "version", "git_repo"):
        if name in raw:
            value = raw[name]
            if isinstance(value, (int, float)) and name == "version":
                value = str(value)
            if not isinstance(value, str) or not value.strip():
                raise bad(name, "a non-empty text")
            values[name] = value.strip()
    if "tags" in raw:
        if not isinstance(raw["tags"], list) or not all(isinstance(t, str) for t in raw["tags"]):
            raise bad("tags", "a list of words")
        values["tags"] = raw["tags"]
    if "authors" in raw:
        values["authors"] = _people(raw["authors"], "authors", bad)
    if "cite" in raw:
        cite = raw["cite"]
        if not isinstance(cite, list) or not cite:
            raise bad("cite", "a non-empty list")
        for i, entry in enumerate(cite):
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise bad(f"cite[{i}]", "a mapping with a text")
            if not (entry.get("doi") or entry.get("url")):
                raise bad(f"cite[{i}]", "a mapping with a doi or a url")
        values["cite"] = [{k: str(v) for k, v in entry.items()} for entry in cite]
    if "covers" in raw:
        covers = raw["covers"]
        if not isinstance(covers, list) or not all(isinstance(c, str) for c in covers):
            raise bad("covers", "a list of image paths")
        values["covers"] = [_existing(path, c, "covers") for c in covers]
        for cover in values["covers"]:
            if cover.suffix.lower() not in (".png", ".jpg", ".jpeg", ".gif"):
                raise bad("covers", "PNG, JPEG or GIF images")
    if "test_image" in raw:
        if not isinstance(raw["test_image"], str):
            raise bad("test_image", "an image path")
        values["test_image"] = _existing(path, raw["test_image"], "test_image")
    return Meta(**values)


_EXAMPLES = {
    "name": "'HeLa nuclei U-Net'",
    "description": "'Segments HeLa nuclei in DIC images.'",
    "license": "CC-BY-4.0",
    "version": "1.0.0",
    "git_repo": "https://github.com/you/your-data",
    "tags": "[nuclei, dic]",
    "authors": "[{name: Ada Lovelace, affiliation: Example Lab}]",
    "cite": "[{text: 'Your paper', doi: 10.1000/xyz}]",
    "covers": "[cover.png]",
    "test_image": "images/cell01.tif",
}
PERSON_FIELDS = ("name", "affiliation", "email", "github_user", "orcid")


def _people(value: Any, name: str, bad) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise bad(name, "a non-empty list")
    people = []
    for i, person in enumerate(value):
        if isinstance(person, str):
            person = {"name": person}
        if not isinstance(person, dict) or not isinstance(person.get("name"), str):
            raise bad(f"{name}[{i}]", "a mapping with a name")
        extra = sorted(set(person) - set(PERSON_FIELDS))
        if extra:
            raise bad(f"{name}[{i}]", f"a mapping of {', '.join(PERSON_FIELDS)} (not {extra[0]})")
        people.append({k: str(v) for k, v in person.items() if v is not None})
    return people


def _existing(meta: Path, relative: str, name: str) -> Path:
    path = (meta.parent / relative).resolve()
    if not path.is_file():
        raise UserError(
            f"--meta {meta}: {name} file {relative} not found (paths are relative to the YAML)"
        )
    return path


def require_bioimageio() -> None:
    """Fail in one line when the optional extra is missing."""
    try:
        import bioimageio.core
        import bioimageio.spec  # noqa: F401
    except ImportError:
        raise UserError(
            f"--format bioimageio needs bioimageio.core; install it with {INSTALL}"
        ) from None


def write_bioimageio(predictor: Predictor, out: Path, meta: Path | None = None) -> Verification:
    """Write the package ``out``, check its weights against Keras, and validate it with
    bioimageio.core's ``test_model`` before it is kept."""
    details = read_meta(meta)
    require_bioimageio()
    check_meta_against_spec(details)
    from unet_tf.inference.predictor import Predictor

    network = float32_copy(predictor.network)
    keras_predictor = Predictor(network, predictor.cfg)
    notes = []
    if not details.authors:
        user = _login()
        details = replace(details, authors=[{"name": user}])
        notes.append(
            f"the package names its author {user!r}; pass --meta FILE.yaml with authors "
            "(and licence, citation) before sharing it"
        )
    with tempfile.TemporaryDirectory(prefix="unet-tf-bioimageio-") as scratch:
        staging = Path(scratch)
        saved = staging / "savedmodel"
        # bioimage.io's TensorFlow runner reads the outputs by name, from float32 only
        write_archive(
            network,
            keras_predictor.in_channels,
            keras_predictor.resize_to,
            saved,
            endpoints={"serve": tf.float32},
            output_name=OUTPUT_ID,
        )
        worst, test_input, test_output = _check_savedmodel(keras_predictor, saved, details)
        _zip_folder(saved, staging / WEIGHTS_FILE)
        files = _write_files(keras_predictor, details, staging, test_input, test_output)
        onnx_file, onnx_difference, why_not = _onnx_weights(keras_predictor, staging / ONNX_FILE)
        worst = max(worst, onnx_difference)
        if why_not:
            notes.append(why_not)
        descr = _describe(keras_predictor, details, staging, files, onnx_file)
        _save_package(descr, out)
    summary = validate_package(out)
    if network is not predictor.network:
        mixed = predictor.untiled().predict(test_input[0])
        drift = float(np.max(np.abs(mixed - test_output[0])))
        notes.append(
            "trained in mixed precision: the package computes in float32 with the same "
            "weights (many runtimes have no bfloat16 kernels), which differs from the "
            f"bfloat16 Keras model by at most {drift:.2e} on the test image"
        )
    notes.append(f"bioimageio.core test_model: {summary}")
    return Verification(worst, notes)


def _login() -> str:
    """The user's login name, the default author; containers may have none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unet-tf user"


def _onnx_weights(predictor: Predictor, out: Path) -> tuple[Path | None, float, str | None]:
    """ONNX weights beside the SavedModel, for runtimes without TensorFlow, when they can
    compute the same thing: the bare network equals ``serve`` only for a model that runs
    at full resolution (ONNX holds no resizing) and keeps a dynamic input size.
    Returns the file (or None), its largest difference from Keras, and why it is missing."""
    if predictor.resize_to:
        return None, 0.0, None
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        return None, 0.0, "no ONNX weights: tf2onnx is not installed (pip install unet-tf[export])"
    difference, notes = write_onnx(predictor, out)
    if any("fixed input size" in note for note in notes):
        return None, 0.0, "no ONNX weights: the converted network only took one input size"
    return out, difference, None


def _onnx_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _check_savedmodel(
    predictor: Predictor, saved: Path, meta: Meta
) -> tuple[float, np.ndarray, np.ndarray]:
    """Run the reloaded SavedModel on the test image and on a random odd-sized one and
    compare with Keras; return the largest difference and the test pair it computed."""
    loaded = tf.saved_model.load(str(saved))
    reference = predictor.untiled()
    test_input = _test_image(predictor, meta)
    step = _step(predictor)
    height = predictor.min_size + step * -(-64 // step)  # an odd side where any side works
    shape = (height, height + step, predictor.in_channels)
    random_image = np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)
    worst, test_output = 0.0, None
    for image in (test_input[0], random_image):
        got = loaded.serve(tf.constant(image[None]))[OUTPUT_ID][0].numpy()
        worst = max(worst, difference(got, reference.predict(image), saved))
        test_output = got[None] if test_output is None else test_output
    check_difference(worst, saved)
    return worst, test_input, test_output


def _step(predictor: Predictor) -> int:
    """Input sides the package accepts are min + n * step: any side when the model
    resizes inside, multiples of the network's minimum when it runs at full resolution."""
    return 1 if predictor.resize_to else predictor.min_size


def _test_image(predictor: Predictor, meta: Meta) -> np.ndarray:
    """(1, H, W, C) float32: a real image, cropped to a side the package accepts."""
    if meta.test_image is not None:
        path = meta.test_image
        image = select_channels(read_image(path), predictor.cfg.data.channels, path)
    else:  # the bundled ISBI 2012 test slice, grey, repeated for a colour model
        folder = sample_data_dir().with_name("isbi2012-test") / "images"
        path = sorted(p for p in folder.iterdir() if is_image_file(p))[0]
        image = select_channels(read_image(path), None, path)
        if image.shape[-1] == 1:
            image = np.repeat(image, predictor.in_channels, axis=-1)
    image = predictor.check(image, str(path))
    step = _step(predictor)
    low = predictor.min_size
    sides = [low + (min(n, MAX_TEST_SIDE) - low) // step * step for n in image.shape[:2]]
    if min(sides) < low:
        raise UserError(f"test_image {path} is smaller than the {low} px the model needs")
    return image[None, : sides[0], : sides[1]].astype(np.float32)


def _zip_folder(folder: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))


def _channel_names(predictor: Predictor) -> list[str]:
    """What each output channel is: the foreground probability, or the target's classes."""
    k = predictor.cfg.model.num_classes
    target = predictor.cfg.data.target
    names = list(TARGETS.get(target).channel_names) if target in TARGETS else []
    if names and len(names) == k:
        return names
    return ["foreground"] if k == 1 else [f"class{i}" for i in range(k)]


def _write_files(
    predictor: Predictor,
    meta: Meta,
    staging: Path,
    test_input: np.ndarray,
    test_output: np.ndarray,
) -> dict[str, Path]:
    """The test pair, the cover, the README and the config, in ``staging``."""
    files = {
        "test_input": staging / "test_input.npy",
        "test_output": staging / "test_output.npy",
        "documentation": staging / "README.md",
        "config": staging / "unet_tf.yaml",
    }
    np.save(files["test_input"], test_input)
    np.save(files["test_output"], test_output)
    names = _channel_names(predictor)
    if not meta.covers:
        files["cover"] = staging / "cover.png"
        probs = test_output[0]
        shown = 1.0 - probs[..., 0] if names[0] == "background" else probs[..., 0]
        grey = (shown * 255).astype(np.uint8)
        picture = np.concatenate([display_rgb(test_input[0]), np.dstack([grey] * 3)], axis=1)
        scale = min(1.0, COVER_HEIGHT / picture.shape[0])  # the spec asks for under 500 kB
        size = (round(picture.shape[1] * scale), round(picture.shape[0] * scale))
        write_png(files["cover"], cv2.resize(picture, size, interpolation=cv2.INTER_AREA))
    files["documentation"].write_text(_readme(predictor, meta, names))
    predictor.cfg.save(files["config"])
    return files


def _description(predictor: Predictor, names: list[str]) -> str:
    cfg = predictor.cfg
    trained = (
        f"images resized to {cfg.data.size} px (resized inside the model, so give whole images)"
        if predictor.resize_to
        else f"{cfg.data.patch} px patches at full resolution (tiles of any multiple of "
        f"{predictor.min_size} px work)"
    )
    encoder = "" if cfg.model.backbone == "none" else f" with a {cfg.model.backbone} encoder"
    return (
        f"2-D U-Net{encoder} trained with unet-tf on {trained}. "
        f"Input: {predictor.in_channels} channel(s), raw intensities; the network "
        f"standardises each image and channel inside. Output: {', '.join(names)} "
        "probabilities at the input's size."
    )


def _readme(predictor: Predictor, meta: Meta, names: list[str]) -> str:
    """The package's documentation: what goes in, what comes out, how to run it."""
    cfg = predictor.cfg
    threshold = predictor.threshold
    outputs = (
        f"channel 0 is the foreground probability; a mask is p > {threshold:g}"
        if names == ["foreground"]
        else f"channels {', '.join(f'{i}: {n}' for i, n in enumerate(names))}; "
        "a pixel's class is the channel of the largest probability"
    )
    size = (
        f"Trained on images resized to {cfg.data.size}x{cfg.data.size} px. The model "
        "resizes every input to that size and its output back, so give each image whole "
        "(in deepImageJ, a patch as large as the image): tiling would show it objects "
        "at a scale it never learned."
        if predictor.resize_to
        else f"Trained on {cfg.data.patch}x{cfg.data.patch} px patches at full resolution: "
        f"tile larger images with tiles of {predictor.min_size} px x n."
    )
    if cfg.data.object_size and not predictor.resize_to:
        size += (
            f" Each training image was rescaled so that its objects' median inscribed "
            f"diameter was {cfg.data.object_size:.3g} px; rescale an image the same way "
            "before you give it to the model (unet-tf's `predict` measures and rescales it)."
        )
    skips = "attention-gated skips" if cfg.model.attention else "plain skips"
    return f"""# {meta.name}

{meta.description or _description(predictor, names)}

Made with [unet-tf](https://pypi.org/project/unet-tf/) (`unet-tf export --format bioimageio`).

## Input

`{INPUT_ID}`: float32, axes (batch, y, x, channel), {predictor.in_channels} channel(s).
Raw 8-bit, 16-bit or float intensities: the network standardises each image and channel
(zero mean, unit variance over y and x) as its first layer, which is also declared as the
`zero_mean_unit_variance` preprocessing (applying it twice changes nothing).

{size}

## Output

`{OUTPUT_ID}`: float32 in [0, 1], axes (batch, y, x, channel), the input's height and
width; {outputs}.

## Running it

- bioimageio.core: `bioimageio predict --inputs image.npy PACKAGE.zip`, or
  `bioimageio.core.predict(model=..., inputs=...)` in Python.
- deepImageJ: Plugins > deepImageJ > Install model, choose this zip.
- ilastik: Neural Network Workflow, load this zip.
- unet-tf: `unet-tf predict PACKAGE.zip images/ --out masks/` (with the
  `PACKAGE.unet_tf.yaml` written beside it; `unet_tf.yaml` in the zip is the same file).

## Validation

`unet-tf export` ran the package's weights on `test_input.npy` to make `test_output.npy`,
compared them with the Keras model it was exported from, and validated the package with
bioimageio.core's `test_model` before writing it. The model's scores on its validation
images are in the run's `metrics.json`.

## Training

Loss {cfg.train.loss}, {cfg.epochs} epochs, batch {cfg.train.batch_size},
depth {cfg.model.depth}, {cfg.model.base_filters} base filters, {cfg.model.block} blocks,
{skips}, target {cfg.data.target}.
The full settings are in `unet_tf.yaml`.
"""


def _describe(
    predictor: Predictor,
    meta: Meta,
    staging: Path,
    files: dict[str, Path],
    onnx_file: Path | None,
):
    """The spec 0.5 model description of the staged files; spec errors name the field."""
    import bioimageio.spec.model.v0_5 as spec
    from pydantic import ValidationError

    names = _channel_names(predictor)
    step = _step(predictor)
    space = [
        spec.SpaceInputAxis(
            id=spec.AxisId(a), size=spec.ParameterizedSize(min=predictor.min_size, step=step)
        )
        for a in "yx"
    ]
    same = [
        spec.SpaceOutputAxis(
            id=spec.AxisId(a),
            size=spec.SizeReference(tensor_id=spec.TensorId(INPUT_ID), axis_id=spec.AxisId(a)),
        )
        for a in "yx"
    ]
    channels_in = [f"channel{i}" for i in range(predictor.in_channels)]
    covers = meta.covers or [files["cover"]]
    # fields left out, not written as null, when the user gave none
    optional = {k: v for k, v in (("version", meta.version), ("git_repo", meta.git_repo)) if v}
    try:
        onnx = {}
        if onnx_file is not None:
            onnx["onnx"] = spec.OnnxWeightsDescr(
                source=onnx_file,
                opset_version=_onnx_opset(onnx_file),
                parent="tensorflow_saved_model_bundle",
                comment="converted from the Keras model with tf2onnx by unet-tf",
            )
        return spec.ModelDescr(
            name=meta.name,
            description=meta.description or _description(predictor, names),
            authors=[spec.Author(**person) for person in meta.authors],
            cite=[spec.CiteEntry(**entry) for entry in meta.cite],
            license=meta.license,
            tags=meta.tags,
            covers=[spec.FileDescr(source=c) for c in covers],
            documentation=spec.FileDescr(source=files["documentation"]),
            attachments=[spec.FileDescr(source=files["config"])],
            inputs=[
                spec.InputTensorDescr(
                    id=spec.TensorId(INPUT_ID),
                    axes=[
                        spec.BatchAxis(),
                        *space,
                        spec.ChannelAxis(channel_names=[spec.Identifier(c) for c in channels_in]),
                    ],
                    test_tensor=spec.FileDescr(source=files["test_input"]),
                    data=spec.IntervalOrRatioDataDescr(type="float32"),
                    preprocessing=[
                        spec.ZeroMeanUnitVarianceDescr(
                            kwargs=spec.ZeroMeanUnitVarianceKwargs(
                                axes=[spec.AxisId("y"), spec.AxisId("x")]
                            )
                        )
                    ],
                )
            ],
            outputs=[
                spec.OutputTensorDescr(
                    id=spec.TensorId(OUTPUT_ID),
                    axes=[
                        spec.BatchAxis(),
                        *same,
                        spec.ChannelAxis(channel_names=[spec.Identifier(n) for n in names]),
                    ],
                    test_tensor=spec.FileDescr(source=files["test_output"]),
                    data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
                )
            ],
            weights=spec.WeightsDescr(
                tensorflow_saved_model_bundle=spec.TensorflowSavedModelBundleWeightsDescr(
                    source=staging / WEIGHTS_FILE,
                    tensorflow_version=spec.Version(tf.__version__),
                ),
                **onnx,
            ),
            **optional,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        if not where:  # not a field: bioimageio.spec itself failed (seen with pydantic 2.14)
            raise UserError(
                f"bioimageio.spec could not build the model description "
                f"({first_line(error['msg'])}); "
                "install versions of bioimageio.spec and pydantic that work together"
            ) from None
        raise _invalid_field(where, error["msg"]) from None


def check_meta_against_spec(meta: Meta) -> None:
    """Check the fields ``--meta`` gave with bioimageio.spec's own types, before the
    export spends minutes converting and testing weights that a bad licence id or
    version would then throw away."""
    import bioimageio.spec.model.v0_5 as spec
    from pydantic import TypeAdapter, ValidationError

    def check(where: str, validate: Callable[[Any], object], value: Any) -> None:
        try:
            validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            inner = [str(part) for part in error["loc"] if not str(part).startswith("function")]
            raise _invalid_field(".".join([where, *inner]), error["msg"]) from None

    for i, person in enumerate(meta.authors):
        check(f"authors.{i}", lambda p: spec.Author(**p), person)
    for i, entry in enumerate(meta.cite):
        check(f"cite.{i}", lambda c: spec.CiteEntry(**c), entry)
    for name in ("license", "version", "git_repo"):
        value = getattr(meta, name)
        if value is not None:
            check(
                name,
                TypeAdapter(spec.ModelDescr.model_fields[name].annotation).validate_python,
                value,
            )


def _invalid_field(where: str, message: str) -> UserError:
    """The one-line error for a field the spec refuses; a refused licence id lists all
    SPDX ids in the message, so the reason is cut to its start."""
    reason = first_line(message)
    if len(reason) > 160:
        reason = reason[:160].rsplit(",", 1)[0] + ", ..."
    return UserError(
        f"the bioimage.io description is invalid at {where}: {reason}; fix that field in --meta"
    )


def _save_package(descr, out: Path) -> None:
    """Zip the description and its files into ``out`` (a temporary name from the exporter)."""
    from bioimageio.spec import save_bioimageio_package

    with _quiet():
        save_bioimageio_package(descr, output_path=out.resolve())


def validate_package(path: Path) -> str:
    """Run bioimageio.core's ``test_model`` on the package; fail naming what failed.

    Its TensorFlow backend unzips the weights into ``./bioimageio_unzipped_tf_weights``,
    relative to the working directory, so the test runs from a temporary one.
    """
    from bioimageio.core import test_model

    path = Path(path).resolve()
    with (
        tempfile.TemporaryDirectory(prefix="unet-tf-bioimageio-test-") as cwd,
        _chdir(cwd),
        _quiet(),
    ):
        summary = test_model(path)
    if summary.status != "passed":
        failed = [d for d in summary.details if d.status == "failed"]
        reasons = [first_line(d.errors[0].msg).strip() if d.errors else "failed" for d in failed]
        what = "; ".join(f"{d.name}: {reason}" for d, reason in zip(failed, reasons, strict=True))
        raise UserError(
            f"bioimageio.core test_model failed on the package ({what or summary.status}); "
            "it was not kept. Please report this as a bug"
        )
    passed = sum(d.status == "passed" for d in summary.details)
    return (
        f"{summary.status}, {passed} of {len(summary.details)} checks passed "
        f"(format {summary.format_version}, bioimageio.core {_version('bioimageio.core')})"
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


@contextlib.contextmanager
def _chdir(folder: str) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """bioimageio logs every step through loguru to stderr; the exporter prints a summary."""
    from loguru import logger

    logger.disable("bioimageio")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.enable("bioimageio")


def is_package(path: Path) -> bool:
    """A zip holding a bioimage.io ``rdf.yaml`` (or ``bioimageio.yaml``)."""
    if not (path.is_file() and path.suffix.lower() == SUFFIX and zipfile.is_zipfile(path)):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name in archive.namelist() for name in RDF_NAMES)


class BioimageioNetwork(SavedModelNetwork):
    """The SavedModel weights of a package, opened from the zip with TensorFlow alone."""

    def __init__(self, path: Path):
        with zipfile.ZipFile(path) as package:
            names = package.namelist()
            rdf_name = next(n for n in RDF_NAMES if n in names)
            rdf = yaml.safe_load(package.read(rdf_name)) or {}
            weights = (rdf.get("weights") or {}).get("tensorflow_saved_model_bundle") or {}
            source = weights.get("source")
            if source not in names:
                raise UserError(
                    f"{path} has no TensorFlow SavedModel weights; export the run again "
                    "with `unet-tf export --format bioimageio`"
                )
            bundle = package.read(source)
        with tempfile.TemporaryDirectory(prefix="unet-tf-bioimageio-") as folder:
            with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
                archive.extractall(folder)
            super().__init__(Path(folder))
