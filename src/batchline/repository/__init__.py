"""The job repository: where instances, executions and contexts are recorded.

Names load on first use (``batchline._lazy``), so importing this package does not import
SQLAlchemy; ``DEFAULT_URL`` lives here for the same reason (the CLI's help shows it).
"""

import typing as _typing

from batchline import _lazy

DEFAULT_URL = "sqlite:///batchline.db"

_EXPORTS: dict[str, str] = {
    "JobRepository": "batchline.repository.base",
    "SqlJobRepository": "batchline.repository.sql",
    "create_engine": "batchline.repository.database",
    "migrate": "batchline.repository.database",
}

__all__ = ["DEFAULT_URL", "JobRepository", "SqlJobRepository", "create_engine", "migrate"]

if _typing.TYPE_CHECKING:
    from batchline.repository.base import JobRepository
    from batchline.repository.database import create_engine, migrate
    from batchline.repository.sql import SqlJobRepository
else:
    __getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS, __all__)
