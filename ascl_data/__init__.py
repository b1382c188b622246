"""ascl-data: build, validate, publish and train on Adaptive Safe Context Learning datasets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ascl-data")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
