"""What starts jobs besides a person: cron schedules and files arriving in a folder."""

from batchline.triggers.files import FolderWatcher
from batchline.triggers.schedule import JobScheduler, cron_trigger

__all__ = ["FolderWatcher", "JobScheduler", "cron_trigger"]
