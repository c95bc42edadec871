"""Errors a user can fix. The command line prints them as one line, without a traceback."""


class BenchError(Exception):
    """Base class: the message is the whole story (what was wrong, what was expected)."""


class ConfigError(BenchError):
    """A config value is out of range or inconsistent (negative sigma, unknown option...)."""


class DataError(BenchError):
    """A dataset folder, index file or image is missing, malformed or unreadable."""


class TrainingError(BenchError):
    """Training diverged (NaN/inf loss) or an artifact is unusable."""
