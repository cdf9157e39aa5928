"""Asking the person at the terminal, for commands that change a lake that is not local."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from lake.errors import ConfigError

if TYPE_CHECKING:
    from lake.settings import Settings


def confirm_interactively(message: str) -> bool:
    """Ask at a terminal (``message``. Continue? [y/N]); without one the answer is no."""
    if not sys.stdin or not sys.stdin.isatty():
        return False
    answer = input(f"{message}. Continue? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def refuse_unconfirmed(settings: Settings, doing: str, yes: bool,
                       confirm: Callable[[str], bool] | None) -> None:
    """Go on if ``yes`` or ``confirm`` agrees to ``doing`` on the lake ``settings`` name (not local);
    else raise :class:`ConfigError` saying so."""
    if yes:
        return
    profile = f", profile {settings.profile}" if settings.profile else ""
    where = settings.endpoint_url or f"real AWS ({settings.region}{profile})"
    message = f"{doing} on {where}"
    if confirm is not None and confirm(message):
        return
    raise ConfigError(f"refusing: {message}; pass --yes to confirm (not local, and no confirmation given)")
