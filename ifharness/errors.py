"""Errors users see. Each names the file and line or the sample key, and what to do."""


class IfharnessError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""


class DataError(IfharnessError):
    """A data, response or task file that cannot be used as it is."""


class TaskNotFound(IfharnessError):
    pass
