"""Finding jobs by reference: ``package.module:attribute``, the one way jobs are loaded.

The command line (``batchline start pkg.jobs:nightly``, ``--jobs pkg.jobs``) and worker
processes (a process partition's worker loads the job that holds its step) use the same rules:
the attribute is a ``batchline.Job``, a list of Jobs, or a callable returning either (called with
no arguments). ``--jobs package.module`` registers every Job a module holds at top level, so
commands that only know a job's name (``restart 42``, ``list-jobs``) can find it.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from batchline.errors import ConfigurationError, NoSuchJob
from batchline.job import Job
from batchline.registry import JobRegistry


def _import(module_name: str) -> ModuleType:
    # A console script does not put the working directory on sys.path; `python -m` does.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise ConfigurationError(f"cannot import job module {module_name!r}: {err}") from None
        raise ConfigurationError(
            f"job module {module_name!r} failed to import: {type(err).__name__}: {err}"
        ) from None
    except Exception as err:
        raise ConfigurationError(
            f"job module {module_name!r} failed to import: {type(err).__name__}: {err}"
        ) from None


def load_jobs(reference: str) -> list[Job]:
    """The Jobs that ``module:attribute`` names (one, or several from a list)."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(
            f"job reference {reference!r}: expected package.module:attribute or a job name"
        )
    module = _import(module_name)
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise NoSuchJob(f"module {module_name!r} has no attribute {attribute!r}") from None
    made = callable(target) and not isinstance(target, Job)
    if made:
        try:
            target = target()
        except Exception as err:
            raise ConfigurationError(
                f"job factory {reference!r} raised {type(err).__name__}: {err}"
            ) from None
    if isinstance(target, Job):
        return [target]
    if isinstance(target, list | tuple) and target and all(isinstance(j, Job) for j in target):
        return list(target)
    if made:
        raise ConfigurationError(f"job factory {reference!r} returned {target!r}, not a Job")
    raise ConfigurationError(
        f"{reference!r} is {target!r}, neither a Job (or a list of Jobs) nor a callable"
    )


def load_reference(reference: str) -> Job:
    """The one Job that ``module:attribute`` names."""
    jobs = load_jobs(reference)
    if len(jobs) != 1:
        names = ", ".join(j.name for j in jobs)
        raise ConfigurationError(f"{reference!r} names {len(jobs)} jobs ({names}); name one")
    return jobs[0]


def register_module(registry: JobRegistry, module_name: str) -> list[Job]:
    """Register every Job found at the top level of a module; refuse a module with none."""
    module = _import(module_name)
    found = [value for value in vars(module).values() if isinstance(value, Job)]
    if not found:
        raise ConfigurationError(f"job module {module_name!r} holds no batchline.Job")
    for job in found:
        registry.register(job, replace=True)
    return found


def resolve(registry: JobRegistry, reference: str) -> Job:
    """A job from ``module:attribute`` (registering it) or from the registry by name."""
    if ":" in reference:
        job = load_reference(reference)
        registry.register(job, replace=True)
        return job
    if reference not in registry:
        known = ", ".join(registry.names()) or "none loaded"
        raise NoSuchJob(
            f"unknown job {reference!r} (known: {known}); name it as package.module:attribute "
            "or load its module with --jobs"
        )
    return registry.get(reference)
