"""credproc: an AWS credential_process helper.

This module is imported on every run, including the cache-hit path: keep it free of imports.
"""

__version__ = "0.1.0"
