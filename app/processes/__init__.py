"""The analyst's side of the processes: versions and instances, the publish gate, migration, incidents, and the jobs
that run service tasks and timers."""
