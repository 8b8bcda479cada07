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


class Reported:
    """How the run's own process ended, as it told the process that records the run (diffexp/run/agent.py): the
    exception's type name and its traceback as text, so the record shows the real failure, not the relay."""

    def __init__(self, type_name: str, message: str, traceback_text: str):
        super().__init__(message)
        self.type_name = type_name
        self.traceback_text = traceback_text


class ReportedFailure(Reported, DiffexpError):
    """The run's process failed (the record ends FAILED)."""


class ReportedInterrupt(Reported, RunInterrupted):
    """The run's process was interrupted (Ctrl-C, SIGTERM: the record ends KILLED)."""
