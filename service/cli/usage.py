"""The one error every command raises for unusable arguments or input.

Its own module so that the subcommands `main` loads (`hooks`) raise it without importing `main`
back: `main` reports it as one line with exit status 2.
"""


class UsageError(Exception):
    """Unusable arguments or input: reported as one line with exit status 2."""
