"""User-facing errors: each says what is wrong and what to do, and maps to an exit code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    CHANGES_PENDING = 2  # --dry-run only, as Terraform's -detailed-exitcode
    CONFIG = 3
    ENVIRONMENT = 4
    SERVER = 5
    MIGRATION = 6
    DATA = 7
    INTERRUPTED = 130


class InstallerError(Exception):
    """An error the user can act on: a message, an optional hint, and an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # e.g. a server log tail, shown below the message


class ConfigError(InstallerError):
    """Bad arguments, profile or .env content."""

    exit_code = ExitCode.CONFIG


class EnvironmentProblem(InstallerError):
    """Something on the machine is missing or in the way (binaries, port, daemon, permissions)."""

    exit_code = ExitCode.ENVIRONMENT


class ServerError(InstallerError):
    """The database server did not start, did not become healthy, or refused us."""

    exit_code = ExitCode.SERVER


class MigrationError(InstallerError):
    """A migration failed or the ledger disagrees with the files in sql/."""

    exit_code = ExitCode.MIGRATION


class DataError(InstallerError):
    """Learning data could not be exported or imported (bad CSV, checksum mismatch)."""

    exit_code = ExitCode.DATA


def file_problem(exc: OSError) -> EnvironmentProblem:
    """A clear error for a file or directory in the wrong state (a directory where a file
    belongs, no permission, an immutable file), naming the path."""
    path = exc.filename2 or exc.filename  # a rename names its target second
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, IsADirectoryError):
        hint = f"a directory is where a file belongs: move it away (`mv {path} {path}.bak`)"
    elif isinstance(exc, NotADirectoryError):
        hint = "a file is where a directory belongs: move it away"
    elif isinstance(exc, PermissionError):
        hint = (f"check its owner and mode (`ls -ld {path}`) and its attributes (`lsattr "
                f"{path}`: an immutable file needs `chattr -i`)")
    else:
        hint = "fix what the message says"
    return EnvironmentProblem(f"cannot use {path}: {reason}",
                              hint=f"{hint}, then run the same command again")
