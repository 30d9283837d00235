"""Partitions on Celery workers: the broker carries ids, the job repository decides who runs.

Needs ``batchline[celery]``. ``CeleryPartitionHandler`` (the manager's side) prepares each
partition's step execution in the repository and sends one task per partition carrying only
ids; a worker (``batchline worker``) claims the step execution with a compare-and-set on its
version before running it, so a task delivered twice runs once. Every chunk commit checks that
version, and the manager fails a partition whose worker stopped proving it is alive.
``CeleryLauncher`` queues whole job executions the same way (``Engine.start_async(on=...)``).
"""

from __future__ import annotations

import typing as _typing

from batchline import _lazy

_EXPORTS = {
    "CeleryLauncher": "batchline.remote.launcher",
    "CeleryPartitionHandler": "batchline.remote.handler",
    "make_app": "batchline.remote.app",
}

__all__ = ["CeleryLauncher", "CeleryPartitionHandler", "make_app"]

if _typing.TYPE_CHECKING:
    from batchline.remote.app import make_app
    from batchline.remote.handler import CeleryPartitionHandler
    from batchline.remote.launcher import CeleryLauncher
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
