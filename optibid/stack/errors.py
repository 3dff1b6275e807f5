"""The one exception root of the local stack."""


class StackError(Exception):
    """A local-stack server could not be started, reached or stopped.

    The message names the cause; `fix` says what to do about it; `packages` are the system
    packages that would supply a missing binary.
    """

    def __init__(self, message: str, fix: str = "", packages: tuple[str, ...] = ()) -> None:
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)
        self.message = message
        self.fix = fix
        self.packages = packages
