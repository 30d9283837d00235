"""What starts jobs besides a person: cron schedules, files arriving in a folder, and messages
on a RabbitMQ or Redis queue (``MessageTrigger``, the ``celery`` extra's kombu).

Names load on first use (``batchline._lazy``), so importing this package costs nothing
until one is touched.
"""

import typing as _typing

from batchline import _lazy

_EXPORTS: dict[str, str] = {
    "FolderWatcher": "batchline.triggers.files",
    "JobScheduler": "batchline.triggers.schedule",
    "MessageTrigger": "batchline.triggers.messages",
    "cron_trigger": "batchline.triggers.schedule",
}

__all__ = [
    "FolderWatcher",
    "JobScheduler",
    "MessageTrigger",
    "cron_trigger",
]

if _typing.TYPE_CHECKING:
    from batchline.triggers.files import FolderWatcher
    from batchline.triggers.messages import MessageTrigger
    from batchline.triggers.schedule import JobScheduler, cron_trigger
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
