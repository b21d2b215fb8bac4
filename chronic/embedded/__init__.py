"""The embedded default stack: real servers from PyPI wheels, data in the state folder."""
