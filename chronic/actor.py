"""Who did it: the actor recorded in the audit trail for commands run at the office's desk.

Every action lands in the audit trail with a person. Operator commands (``chronic admin …``,
``chronic sms resend``) act as ``operator:<name>``, the name from ``CHRONIC_OPERATOR`` or else
the login name of whoever runs the command.
"""

from __future__ import annotations

import getpass

from chronic.settings import Settings, get_settings


def operator(settings: Settings | None = None) -> str:
    """``operator:<name>`` for the person running this command."""
    settings = settings or get_settings()
    name = settings.operator
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
    return f"operator:{name}"[:64]
