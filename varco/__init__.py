"""Varco: access control and resource monitoring for coworking spaces."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("varco")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
