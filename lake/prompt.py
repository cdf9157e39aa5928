"""Asking the person at the terminal, for commands that change a lake that is not local."""

from __future__ import annotations

import sys


def confirm_interactively(message: str) -> bool:
    """Ask at a terminal (``message``. Continue? [y/N]); without one the answer is no."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    answer = input(f"{message}. Continue? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
