"""The one exception root of the local stack."""


class StackError(Exception):
    """A local-stack server could not be started, reached or stopped.

    The message names the cause; `fix` says what to do about it.
    """

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(f"{message}\n  fix: {fix}" if fix else message)
        self.fix = fix
