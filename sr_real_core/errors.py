"""User errors and the command line's one rule for them.

A user error (bad input: a missing or malformed file, an out-of-range option, an unusable checkpoint) exits 2
with one line naming the input and what is wrong; an internal error (a bug) exits 1, also with one line.
`sr-real --debug ...` or SR_REAL_DEBUG=1 shows the traceback instead.

Outputs are written to a temporary path beside their destination and renamed into place when complete
(`staged_output`), so a failed run leaves nothing half-written.
"""
from __future__ import annotations

import argparse
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


def guarded(function: Callable[[Any], None], on_error: Callable[[BaseException], None]) -> Callable[[Any], None]:
    """`function` that hands any exception to `on_error` instead of raising: for callbacks of a long-running
    node, where one message must never stop the others."""
    def call(message: Any) -> None:
        try:
            function(message)
        except Exception as error:  # noqa: BLE001 - see the docstring
            on_error(error)

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


def check_output_dir(path: str | Path, name: str = "--out") -> Path:
    """An output folder path that can be created: not an existing file. UserError otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{name} {str(path)!r} is an existing file, not a folder")
    return path


@contextmanager
def staged_output(destination: str | Path) -> Iterator[Path]:
    """A temporary folder or file path beside `destination`, renamed onto it when the block completes and
    removed when it fails. An existing folder destination is replaced only by a complete new one; an existing
    destination folder's other contents are kept (the new files are moved in)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent))
    target = staging / destination.name
    try:
        yield target
        if target.is_dir() and destination.is_dir():
            for item in target.iterdir():
                _replace(item, destination / item.name)
        elif target.exists():
            _replace(target, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(source: Path, destination: Path) -> None:
    if destination.is_dir() and not destination.is_symlink():
        shutil.rmtree(destination)
    os.replace(source, destination)
