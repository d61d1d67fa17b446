"""The one error path of the console commands: exit codes and one-line error messages.

Exit codes: 0 success; 1 some inputs failed (the command reports which); 2 bad input
(an :class:`~mmanat.utils.exceptions.MMAnatError`: printed as one ``error: ...`` line on
stderr, no traceback); 130 interrupted (Ctrl-C, no traceback).
"""
import functools
import os.path as osp
import sys
from typing import Callable, List, Optional

from ..utils.exceptions import MMAnatError

EXIT_OK = 0
EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130


def error_line(err: BaseException) -> str:
    """``error: <message>`` on one line (the lines of a multi-line message joined by spaces)."""
    text = ' '.join(ln.strip() for ln in str(err).splitlines() if ln.strip())
    return f'error: {text or type(err).__name__}'


def run(func: Callable[[Optional[List[str]]], Optional[int]],
        argv: Optional[List[str]] = None) -> int:
    """Call ``func(argv)`` and turn its outcome into an exit code.

    Args:
        func (callable): the command body; returns an exit code (None means 0).
        argv (list[str], optional): the arguments (default: ``sys.argv[1:]``).

    Returns:
        int: the exit code: ``func``'s, 2 after an :class:`MMAnatError` (message printed on
        stderr as one line), 130 after Ctrl-C. ``SystemExit`` (``--help``, argparse errors)
        passes through.
    """
    try:
        code = func(argv)
    except MMAnatError as err:
        print(error_line(err), file=sys.stderr, flush=True)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_OK if code is None else int(code)


def command(func: Callable[[Optional[List[str]]], Optional[int]]
            ) -> Callable[[Optional[List[str]]], int]:
    """Decorator: ``main(argv=None) -> int`` running ``func`` through :func:`run`.

    Console entry points (``setup.py``) call the decorated ``main()`` and exit with what it
    returns; tests call ``main([...])`` and check the returned code.
    """

    @functools.wraps(func)
    def main(argv: Optional[List[str]] = None) -> int:
        return run(func, argv)

    return main


def checkout_root() -> str:
    """The repository folder holding the package (editable install), else the working folder.

    Default paths of the commands (``data/samples``, ``resources/``, ``work_dirs/``) are
    relative to it, so they mean the same whatever folder a command is started from.
    """
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    if osp.isdir(osp.join(root, 'configs')) and osp.isfile(osp.join(root, 'setup.py')):
        return root
    return osp.abspath('.')
