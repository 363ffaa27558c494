"""Declarations of certificate pilots: the model and its history, the lifecycle (the one writer of status, lock and
history), the school's use cases and pages."""
