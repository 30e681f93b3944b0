"""A module that fails when imported, like one with a missing dependency."""

import a_package_that_is_not_installed  # noqa: F401
