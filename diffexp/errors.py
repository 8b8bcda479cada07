"""The one exception type users see: a message they can act on."""


class DiffexpError(Exception):
    """A problem the user can fix (bad config, missing tool, unreadable artifact)."""


class ConfigError(DiffexpError):
    """An invalid run configuration, found before anything expensive starts."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class RunInterrupted(BaseException):
    """Raised in the main thread on SIGTERM/SIGINT so the run is recorded as KILLED.

    A BaseException like KeyboardInterrupt, so `except Exception` in engine code does not swallow it.
    """
