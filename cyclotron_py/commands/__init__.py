"""Subcommands of the `cyclotron` CLI, one module each."""
