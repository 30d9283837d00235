"""Jobs that tests run in subprocesses (crash, launch-race, CLI and partition tests)."""
