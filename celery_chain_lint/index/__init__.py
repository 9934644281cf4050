"""The project index: every module's facts, name resolution across modules, and the task index."""
