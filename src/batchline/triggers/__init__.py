"""What starts jobs besides a person: cron schedules and files arriving in a folder.

Names load on first use (``batchline._lazy``), so importing this package costs nothing
until one is touched.
"""

import typing as _typing

from batchline import _lazy

_EXPORTS: dict[str, str] = {
    "FolderWatcher": "batchline.triggers.files",
    "JobScheduler": "batchline.triggers.schedule",
    "cron_trigger": "batchline.triggers.schedule",
}

__all__ = [
    "FolderWatcher",
    "JobScheduler",
    "cron_trigger",
]

if _typing.TYPE_CHECKING:
    from batchline.triggers.files import FolderWatcher
    from batchline.triggers.schedule import JobScheduler, cron_trigger
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
