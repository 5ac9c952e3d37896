"""The test suite, as a package so that its helpers import as ``tests.support`` (see there)."""
