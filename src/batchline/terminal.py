"""Text from data shown on a terminal: control characters neutralised.

Job parameters, names, exit messages and skipped items come from users and their inputs. An
ESC or CSI sequence among them would move the cursor, recolour or retitle the operator's
terminal, and a carriage return would overwrite a line; so they are shown escaped (``\\x1b``).
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with its terminal control characters (all but tab and newline) escaped."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)
