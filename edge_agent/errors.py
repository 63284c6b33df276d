"""The edge agent's error root."""


class EdgeError(Exception):
    """Root of every error the edge agent raises on purpose."""


class ConfigError(EdgeError, ValueError):
    """A configuration file that cannot be used; the message names the field and the reason."""


class NotConnectedError(EdgeError, ConnectionError):
    """The broker cannot be reached right now."""


class ReaderError(EdgeError, OSError):
    """A reader that cannot be opened or stopped working; the message names the port or bus."""
