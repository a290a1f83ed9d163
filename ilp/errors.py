"""The one base class for problems a user can act on: a bad mapping or export, a missing warehouse, an
unknown harm index, a tasking without an owner. The CLI prints such an error as one line and exits 1
(``--debug`` shows the traceback); anything else is a bug and keeps its traceback."""


class UserError(Exception):
    """A problem the user can fix; its message says what was wrong, where, and what to do."""
