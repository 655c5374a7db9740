"""service-router: see the repository README for what it does and how it is configured."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("service-router")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
