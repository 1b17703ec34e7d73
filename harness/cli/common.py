"""Error handling shared by every subcommand: user errors print one clear message, never a traceback."""

from __future__ import annotations

import sys

import click

from harness.errors import EXIT_INTERRUPTED, EXIT_USAGE, HarnessError


def run_cli(group: click.Group) -> int:
    try:
        code = group.main(standalone_mode=False, prog_name="harness")
    except HarnessError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE if exc.exit_code in (1, 2) else exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    return code if isinstance(code, int) else 0
