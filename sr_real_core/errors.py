"""User errors and the command line's one rule for them.

A user error (bad input: a missing or malformed file, an out-of-range option, an unusable checkpoint) exits 2
with one line naming the input and what is wrong; an internal error (a bug) exits 1, also with one line.
`sr-real --debug ...` or SR_REAL_DEBUG=1 shows the traceback instead.

Outputs are written to a temporary path beside their destination and renamed into place when complete
(`staged_output`), so a failed run leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEBUG_ENV = "SR_REAL_DEBUG"


class UserError(ValueError):
    """Bad input from the user; the text names the input and what is wrong. A ValueError, so that code that
    already treats ValueError as bad input (the rclpy node's start-up, the node core) handles it as such."""


# What a command line treats as the user's input being wrong. OSError covers missing and unreadable files,
# ValueError the libraries' format and range checks (UnicodeError included).
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def one_line(error: BaseException) -> str:
    """The error as one line; an OSError as `PATH: reason`, the form users know from the shell."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def debugging(argv_debug: bool = False) -> bool:
    return argv_debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def run_command(prog: str, command: Callable[[], int], *, debug: bool = False) -> int:
    """Run a command-line handler under the rule above: its return code, 2 for a user error, 1 for any other
    error, 130 when interrupted; one line on stderr instead of a traceback unless debugging."""
    if debugging(debug):
        return command()
    try:
        return command()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug: still one line, the traceback on request
        print(f"{prog}: internal error: {type(error).__name__}: {one_line(error)} (set {DEBUG_ENV}=1 or pass "
              "--debug for the traceback)", file=sys.stderr)
        return 1


def describe(error: BaseException) -> str:
    """`Type: message` on one line: what a long-running process logs of an error it survives."""
    return f"{type(error).__name__}: {one_line(error)}"


def guarded(function: Callable[..., None], on_error: Callable[[str], None]) -> Callable[..., None]:
    """`function` that hands any exception, `describe`d, to `on_error` instead of raising: for callbacks of a
    long-running node (message callbacks and timers), where one message must never stop the others."""
    def call(*args: Any) -> None:
        try:
            function(*args)
        except Exception as error:  # noqa: BLE001 - see the docstring
            on_error(describe(error))

    return call


def positive_int(text: str) -> int:
    """argparse type of counts and sizes: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def device_argument(text: str) -> str:
    """argparse type of --device: a torch device this machine has."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; e.g. cpu, cuda, cuda:1") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"device {text!r}: no CUDA GPU is available here")
    if device.type not in ("cpu", "cuda", "mps", "xpu"):
        raise argparse.ArgumentTypeError(f"device {text!r}: use cpu or cuda (cuda:N)")
    return text


def check_output_dir(path: str | Path, name: str = "--out") -> Path:
    """An output folder path that can be created: not an existing file. UserError otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{name} {str(path)!r} is an existing file, not a folder")
    return path


@contextmanager
def staged_output(destination: str | Path, *, folder: bool = False) -> Iterator[Path]:
    """A temporary path beside `destination` (same parent, so relative paths written inside stay valid),
    renamed onto it when the block completes and removed when it fails. `folder`: the path is an empty folder
    whose contents are moved into `destination` (an existing folder keeps its other files); else a file path."""
    destination = Path(destination)
    created = [parent for parent in destination.absolute().parents if not parent.exists()]
    destination.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = f".{destination.name}.", ".partial"
    if folder:
        staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=destination.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=destination.parent)
        os.close(handle)
        staging = Path(name)
    umask = os.umask(0o22)
    os.umask(umask)
    staging.chmod((0o777 if folder else 0o666) & ~umask)  # mkdtemp/mkstemp make private paths
    try:
        yield staging
        if folder and destination.is_dir():
            for item in staging.iterdir():
                _replace(item, destination / item.name)
        else:
            os.replace(staging, destination)
        created = []
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
        for parent in created:  # made for this output, which failed: innermost first
            with contextlib.suppress(OSError):
                parent.rmdir()


def _replace(source: Path, destination: Path) -> None:
    if destination.is_dir() and not destination.is_symlink():
        shutil.rmtree(destination)
    os.replace(source, destination)
