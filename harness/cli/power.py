"""``harness power``: cases or repeats needed to detect a drop, from a pilot run or from assumed rates."""

from __future__ import annotations

from pathlib import Path

import click

from harness.errors import EXIT_OK, HarnessError


@click.command("power")
@click.argument("run", required=False)
@click.option("--rate", type=float, default=None, help="Assumed baseline pass rate (0-1), when there is no RUN.")
@click.option("--drop", type=float, default=None,
              help="Drop to detect, as a fraction (0.05 = 5 points). Default: the suite's gate margin; 0.05 "
                   "with --rate.")  # fmt: skip
@click.option("--cases", type=click.IntRange(min=2), default=None, help="With --rate: the suite size to assess.")
@click.option("--correlation", type=float, default=0.5, show_default=True,
              help="Assumed correlation of a candidate's per-case results with the baseline's.")
@click.option("--power", "power", type=float, default=0.8, show_default=True, help="Target power, in [0.5, 1).")
@click.option("--baseline", default=None, metavar="VARIANT", help="Baseline variant of the pilot run.")
@click.option("--reports", "reports_root", type=click.Path(path_type=Path), default=Path("reports"),
              show_default=True, help="Where run ids are looked up.")
def command(run: str | None, rate: float | None, drop: float | None, cases: int | None, correlation: float,
            power: float, baseline: str | None, reports_root: Path) -> int:  # fmt: skip
    """Size a suite: from a pilot RUN (folder, suite folder or run id) or from --rate.

    Prints the smallest drop the suite detects with 80% power (WARN and BLOCK levels) and the cases, or
    repeats per case, it would take to detect --drop.
    """
    from harness.report.locate import locate_run
    from harness.report.power import plan_from_rates, plan_from_run, render_plans

    if (run is None) == (rate is None):
        raise HarnessError("give either a pilot RUN or --rate (an assumed baseline pass rate)")
    if run is not None:
        if cases is not None:
            raise HarnessError("--cases goes with --rate; a pilot run has its own number of cases")
        plans = plan_from_run(locate_run(run, reports_root), drop, correlation, power, baseline)
    else:
        assert rate is not None
        plans = [plan_from_rates(rate, 0.05 if drop is None else drop, correlation, cases, power)]
    click.echo(render_plans(plans), nl=False)
    return EXIT_OK
