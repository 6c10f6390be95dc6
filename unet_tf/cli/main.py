"""The ``unet-tf`` command group and its entry point; each command is its own module.

The commands parse arguments and call the library, nothing more. Bad input ends in
one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

import click

from unet_tf.cli.augment_preview import augment_preview
from unet_tf.cli.evaluate import evaluate
from unet_tf.cli.export import export
from unet_tf.cli.fit import fit
from unet_tf.cli.info import info
from unet_tf.cli.plan import plan
from unet_tf.cli.predict import predict
from unet_tf.cli.tune import tune
from unet_tf.data.checks import DataWarning
from unet_tf.errors import UserError, os_error_message


@click.group(
    commands=[fit, evaluate, predict, export, info, augment_preview, plan, tune],
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="unet-tf")
def cli() -> None:
    """U-Nets for 2-D biomedical image segmentation (Keras 3 / TensorFlow)."""


@contextlib.contextmanager
def _data_warnings_as_lines() -> Iterator[None]:
    """Print each distinct :class:`DataWarning` once, as one ``warning:`` line on stderr.

    Python's own format adds the file and line of the library code that warned,
    which means nothing to a user; other warnings keep that format.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default", DataWarning)
        show = warnings.showwarning

        def show_line(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, DataWarning):
                click.echo(f"warning: {message}", err=True)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = show_line
        yield


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning bad input into one line and exit code 2."""
    try:
        with _data_warnings_as_lines():
            cli.main(args=argv, prog_name="unet-tf", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except OSError as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        return 2
    return 0


if __name__ == "__main__":  # the old spelling, python -m unet_tf.cli.main
    sys.exit(main())
