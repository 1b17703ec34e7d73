"""Statistics for eval results (described for users in docs/statistics.md): intervals, flakiness, paired
comparisons, power, cost/latency, the gate rule, and per-variant summaries built from stored trials."""

from harness.stats.comparison import Comparison, apply_holm, compare, compare_runs
from harness.stats.costlat import (
    cluster_quantile_ci,
    cluster_quantile_cis,
    pareto_front,
    quantile_ci,
    ratio_ci,
    significantly_dominated,
    studentized_bootstrap_ci,
)
from harness.stats.flakiness import VarianceComponents, variance_components
from harness.stats.frontier import ParetoPoint, pareto_summary
from harness.stats.gate_rule import GateDecision, Verdict, gate_verdict
from harness.stats.intervals import (
    Interval,
    bounded_degenerate_ci,
    bounded_mean_ci,
    clustered_proportion_ci,
    grouped_mean_ci,
    pass_rate_ci,
    proportion_upper_bound,
)
from harness.stats.paired import (
    PairedAnalysis,
    bonferroni_level,
    holm_adjust,
    mcnemar_exact,
    mcnemar_midp,
    paired_comparison,
    paired_diff_ci,
    sign_flip_test,
)
from harness.stats.power import (
    mde,
    mde_normal,
    mde_sentence,
    power_paired,
    required_cases,
    required_repeats,
    sd_diff_binary,
    sd_diff_components,
)
from harness.stats.seeding import seed_from
from harness.stats.summary import VariantSummary, summarize_variants

__all__ = [
    "Comparison",
    "GateDecision",
    "Interval",
    "PairedAnalysis",
    "ParetoPoint",
    "VarianceComponents",
    "VariantSummary",
    "Verdict",
    "apply_holm",
    "bonferroni_level",
    "bounded_degenerate_ci",
    "bounded_mean_ci",
    "cluster_quantile_ci",
    "cluster_quantile_cis",
    "clustered_proportion_ci",
    "compare",
    "compare_runs",
    "gate_verdict",
    "grouped_mean_ci",
    "holm_adjust",
    "mcnemar_exact",
    "mcnemar_midp",
    "mde",
    "mde_normal",
    "mde_sentence",
    "paired_comparison",
    "paired_diff_ci",
    "pareto_front",
    "pareto_summary",
    "pass_rate_ci",
    "power_paired",
    "proportion_upper_bound",
    "quantile_ci",
    "ratio_ci",
    "required_cases",
    "required_repeats",
    "sd_diff_binary",
    "sd_diff_components",
    "seed_from",
    "sign_flip_test",
    "significantly_dominated",
    "studentized_bootstrap_ci",
    "summarize_variants",
    "variance_components",
]
