"""``harness view``: build the viewer's static site and serve it on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK


@click.command("view")
@click.argument("reports_root", required=False, type=click.Path(file_okay=False, path_type=Path),
                default=Path("reports"))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the site [default: REPORTS/.site]; e.g. a CI artifact folder.")
@click.option("--no-serve", is_flag=True, help="Only build the site.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: a free one).")
def command(reports_root: Path, out: Path | None, no_serve: bool, port: int) -> int:
    """Runs, suite trends with a heat map, one run's report, and any two runs or variants side by side.

    The site is static (any web server can host it); served by this command it also computes a comparison
    of any two runs on request.
    """
    from harness.errors import HarnessError
    from harness.viewer.build import build_site
    from harness.viewer.serve import make_server

    if not reports_root.is_dir():
        raise HarnessError(f"{reports_root}: no such reports folder (run a suite first: harness run SUITE)")
    site = out if out is not None else reports_root / ".site"
    page = build_site(reports_root, site)
    click.echo(f"site: {page}", err=True)
    if no_serve:
        return EXIT_OK
    server = make_server(site, reports_root, port)
    click.echo(f"viewer: http://127.0.0.1:{server.server_address[1]}/  (Ctrl-C to stop)", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK
