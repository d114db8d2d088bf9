"""The project's own checkov checks, loaded with ``checkov --external-checks-dir`` (see
tests/integration/test_security_scan.py): what checkov's built-in checks do not look at."""
