"""``harness validate``: check suites against the schema and for meaning, without running anything."""

from __future__ import annotations

import click

from harness.errors import EXIT_OK, EXIT_USAGE, HarnessError, SuiteErrors


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=True))
@click.option("--schema", "print_schema", is_flag=True, help="Print the suite JSON Schema and exit.")
def command(paths: tuple[str, ...], print_schema: bool) -> int:
    """Validate suite files (or every *.yaml under a folder). Exit 2 on the first invalid one."""
    from harness.suite import load_suite
    from harness.suite.discover import expand_paths

    if print_schema:
        import json

        from harness.suite import suite_schema

        click.echo(json.dumps(suite_schema(), indent=2))
        return EXIT_OK
    if not paths:
        raise click.UsageError("give suite files or folders to validate (or --schema to print the JSON Schema)")
    failed = 0
    for path in expand_paths(paths):
        try:
            suite = load_suite(path)
        except SuiteErrors as exc:
            failed += 1
            for err in exc.errors:
                click.echo(f"error: {err}", err=True)
            continue
        except HarnessError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        click.echo(f"ok: {path} ({suite.name}: {len(suite.models)} models, {len(suite.prompts)} prompts)")
        for warning in suite.warnings:
            click.echo(f"warning: {warning}", err=True)
    return EXIT_USAGE if failed else EXIT_OK
