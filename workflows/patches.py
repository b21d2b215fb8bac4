"""Changes to workflow code since release, and the generation that carries them on new runs.

A change is a ``workflow.patched`` ID: a run whose history has its marker takes the new code,
a run from before it replays the old. Each patch a new run meets costs it two history events
(the marker and the ``TemporalChangeVersion`` upsert the SDK adds) and the server a visibility
write. A run started on this release meets one patch, its generation's, which stands for every
change listed with it; runs started before the generation replay with the patches they
recorded, as they always did.

Adding a change later: give it its own patch ID and do not list it in an existing generation
(runs of that generation were started without it); list it in the next generation.
"""

from __future__ import annotations

from temporalio import workflow


class Generation:
    """A patch ID standing for a set of changes, all in force on the runs that record it."""

    def __init__(self, marker: str, *changes: str) -> None:
        self.marker = marker
        self.changes = frozenset(changes)

    def applies(self, change: str) -> bool:
        """True when ``change`` is in force in this run (as ``workflow.patched(change)``)."""
        # A run of this generation has its marker (recorded at its first call here); a run
        # from before it answers False for the marker and falls back on the change's own.
        if change in self.changes and workflow.patched(self.marker):
            return True
        return workflow.patched(change)


NO_GENERATION = Generation("")
"""For workflows without a generation: every change is asked by its own patch."""
