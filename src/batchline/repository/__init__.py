"""The job repository: where instances, executions and contexts are recorded."""

from batchline.repository.base import JobRepository
from batchline.repository.database import DEFAULT_URL, create_engine, migrate
from batchline.repository.sql import SqlJobRepository

__all__ = ["DEFAULT_URL", "JobRepository", "SqlJobRepository", "create_engine", "migrate"]
