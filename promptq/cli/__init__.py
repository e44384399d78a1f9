"""The user commands of `promptq` (submit, status, cancel, attempts, batch, usage), made with the
Python client and registered beside the admin commands."""

from promptq.cli.user_commands import USER_COMMANDS, register_user_commands

__all__ = ["USER_COMMANDS", "register_user_commands"]
