"""stackvol: the OpenStack Compute Volumes extension as one standalone service."""

__version__ = "0.1.0"
