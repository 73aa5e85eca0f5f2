"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """Bad input (config, names, paths, credentials): reported before any compute is spent."""


class ActionFailed(Exception):
    """An action could not produce a model; the exploration records it and goes on."""


def require(condition: bool, message: str) -> None:
    """A one-line UserError with `message` unless `condition` holds (checks of a config, before any compute)."""
    if not condition:
        raise UserError(message)
