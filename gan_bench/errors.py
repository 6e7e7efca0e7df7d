"""User-facing errors: the CLI prints the message as one line and exits non-zero, no traceback."""


class UserError(Exception):
    """Bad input from the user (config value, missing file, corrupt checkpoint).

    The message must name the problem and the fix in one line, e.g.
    "alpha must be a positive number, got 'abc': pass e.g. alpha=0.5".
    """
