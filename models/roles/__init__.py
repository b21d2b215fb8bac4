"""Role contracts: for each worker role, its task queue and the activities it serves, with their
request and result types (workflow-safe: no I/O, nothing from ``workers/`` or ``activities/``).

Workflows call activities through these (``workflows.steps.run_step(Review.change_status, …)``),
so the argument and the result are type-checked; each activity class in ``activities/``
subclasses its contract, so an activity renamed or retyped on one side only fails at
type-check (mypy: an abstract contract method left unimplemented), not at run time. The
activity's name on the wire is the method's name, as before.
"""
