"""The commands of ``bangfu``, one module each (a few tiny related ones share a module). Each
module defines ``COMMANDS``: name -> :class:`workflow.entrypoints.cli.command.Command` (its
arguments, handler and Chinese output); :mod:`workflow.entrypoints.cli.registry` names the module
of every command and imports it only when that command runs."""
