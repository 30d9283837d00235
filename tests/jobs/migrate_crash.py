"""Migrate a repository and die by SIGKILL after the n-th statement that changes it.

python -m tests.jobs.migrate_crash URL N     (N = 0: no kill; prints how many there were)
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import event

from batchline.repository import create_engine, migrate
from batchline.testing import CrashInjector

WRITES = ("CREATE", "ALTER", "INSERT", "UPDATE", "DELETE", "DROP")


def main(url: str, n: int) -> None:
    crash = CrashInjector(f"statement:{n}" if n else None, points=("statement",))
    engine = create_engine(url)
    count = 0

    @event.listens_for(engine, "after_cursor_execute")
    def _after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal count
        if statement.lstrip().upper().startswith(WRITES):
            count += 1
            crash.passing("statement")

    migrate(engine)
    engine.dispose()
    print(count)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
