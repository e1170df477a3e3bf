"""`cyclotron` command line. Each subcommand lives in its own module under
``cyclotron_py.commands`` exposing ``add_parser(subparsers)``, which registers
the parser and sets ``func=run`` where ``run(args) -> int``.

Exit status, the same for every command: 0 done (``validate``: every manifest valid);
1 bad input: an invalid manifest, a path that does not exist, a directory without
manifests, an unreadable policy/catalog/domains file (any CyclotronError); 2 a command
line argparse rejects (unknown option, missing argument) or no command; 130 interrupted.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import CyclotronError

# Subcommand modules, in the order `cyclotron --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "validate",
    "diff",
    "matrix",
    "report",
    "plan",
    "schema",
    "run",
    "tick",
    "schedule",
    "status",
    "history",
    "approvals",
    "serve",
    "exchange",
    "pull",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command, or only ``only`` (its module imports alone: a quicker start)."""
    parser = argparse.ArgumentParser(
        prog="cyclotron",
        description="Keep a fleet of machines at capability parity.",
        epilog="exit status: 0 done; 1 bad input (invalid manifest, no such path, nothing to read); "
        "2 invalid command line; 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"cyclotron {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        if only and name != only:
            continue
        try:
            module = importlib.import_module(f"cyclotron_py.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"cyclotron_py.commands.{name}":
                continue  # not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv_given = argv
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMAND_MODULES else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # Run as the program (not main([...]) from a test), a command over a whole fleet ends the
    # process once its output is out: no collector pass and no teardown walking the millions of
    # objects it built (a few tenths of a second on 100 x 5,000). Such a command's parser sets
    # exit_when_done=True.
    as_program = argv_given is None and getattr(args, "exit_when_done", False)
    if as_program:
        gc.disable()  # never re-enabled: gc_paused() leaves it as it found it
    try:
        code: int = args.func(args)
    except CyclotronError as exc:
        print(f"cyclotron {args.command}: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    if as_program:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass  # the reader went away: nothing left to say
    except OSError:
        code = code or 1  # the output did not get out: not a success
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
