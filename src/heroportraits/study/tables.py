"""A study's tables: results.csv (one row per run), summary.csv (per variant and metric), and the
rule that turns a difference between variants into a verdict.

The verdict rule. For one metric, a variant with n_v seeds, mean m_v and standard deviation
s_v (over seeds, ddof = 1), against the baseline's n_b, m_b, s_b:

    diff      = m_v - m_b
    se        = sqrt(s_v^2 / n_v + s_b^2 / n_b)      the standard error of the difference
    threshold = max(2 * se, s_v, s_b)
    |diff| > threshold   ->  "better" / "worse" (metrics with a direction, METRIC_DIRECTION)
                             or "higher" / "lower" (the others)
    otherwise            ->  "no measurable difference"

Both sides need at least 2 seeds ("too few seeds" otherwise). Two standard errors alone is a
~95 % band only with many seeds (with 3 seeds a t-test would ask for ~4.3 se), so the rule also
asks the difference to exceed each side's own seed-to-seed spread: a difference smaller than
what changing the seed does is never reported as a win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Columns of results.csv that describe the run, not its scores.
ID_COLUMNS = [
    "study",
    "variant",
    "seed",
    "run",
    "preset",
    "dataset",
    "budget",
    "n",
    "steps",
    "train_minutes",
    "evaluate_seconds",
]
# Lower is better / higher is better; metrics not listed (density, colour counts, tone spreads,
# memorisation distances) are better when closer to the real data, so they get no direction.
LOWER_IS_BETTER = (
    "fd",
    "kid.mean",
    "palette.drift",
    "detail.whole.pattern_distance",
    "detail.face.pattern_distance",
    "detail.face.fd",
    "speed.step_ms",
    "speed.export_mb",
)
HIGHER_IS_BETTER = ("precision", "recall", "coverage", "speed.drawn_per_s")
NO_DIFFERENCE = "no measurable difference"


def direction(metric: str) -> str | None:
    """ "lower" or "higher" (which is better), or None when neither is."""
    if metric in LOWER_IS_BETTER or metric.startswith("intra_fd."):
        return "lower"
    if metric in HIGHER_IS_BETTER or metric.startswith("cond_acc."):
        return "higher"
    return None


def verdict(metric: str, diff: float, threshold: float) -> str:
    """The rule's word for one difference (the module docstring gives the rule)."""
    if not abs(diff) > threshold:  # also catches NaN
        return NO_DIFFERENCE
    moved = "higher" if diff > 0 else "lower"
    best = direction(metric)
    return moved if best is None else ("better" if moved == best else "worse")


def compare(values: list[float], baseline: list[float]) -> dict:
    """mean, std, diff to the baseline and the rule's threshold for one metric of one variant."""
    v, b = np.asarray(values, float), np.asarray(baseline, float)
    v, b = v[~np.isnan(v)], b[~np.isnan(b)]
    out = {"n_seeds": len(v), "mean": float(v.mean()) if len(v) else math.nan}
    out["std"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    b_std = float(b.std(ddof=1)) if len(b) > 1 else math.nan
    out["baseline_mean"] = float(b.mean()) if len(b) else math.nan
    out["diff"] = out["mean"] - out["baseline_mean"]
    if len(v) > 1 and len(b) > 1:
        se = math.sqrt(out["std"] ** 2 / len(v) + b_std**2 / len(b))
        out["threshold"] = max(2 * se, out["std"], b_std)
    else:
        out["threshold"] = math.nan
    return out


def metric_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in results.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(results[c])]


def summarise(results: pd.DataFrame, baseline: str, order: list[str] | None = None) -> pd.DataFrame:
    """One row per (variant, metric): n_seeds, mean, std, baseline_mean, diff, threshold, verdict, display."""
    order = order or list(dict.fromkeys(results["variant"]))
    rows = []
    base = results[results["variant"] == baseline]
    for variant in order:
        mine = results[results["variant"] == variant]
        if mine.empty:
            continue
        for metric in metric_columns(results):
            c = compare(mine[metric].tolist(), base[metric].tolist())
            if c["n_seeds"] == 0:
                continue
            if variant == baseline:
                word = "baseline"
            elif math.isnan(c["threshold"]):
                word = "too few seeds"
            else:
                word = verdict(metric, c["diff"], c["threshold"])
            display = f"{c['mean']:.4g}" + ("" if math.isnan(c["std"]) else f" ± {c['std']:.2g}")
            rows.append({"variant": variant, "metric": metric, **c, "verdict": word, "display": display})
    return pd.DataFrame(rows)


def main_table(summary: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Variants x main metrics, each cell "mean ± std (verdict)": what the runner prints."""
    rows = summary[summary["metric"].isin(metrics)].copy()
    rows["cell"] = rows["display"] + rows["verdict"].map(lambda w: "" if w == "baseline" else f" ({w})")
    table = rows.pivot(index="variant", columns="metric", values="cell")
    order = list(dict.fromkeys(summary["variant"]))
    return table.reindex(index=order, columns=[m for m in metrics if m in table.columns])


# ---------------------------------------------------------------- flat metrics of one evaluation
def flat_metrics(results: dict) -> dict[str, float]:
    """evaluate_images' nested dict (+ "palette" from tone.palette_tone) -> metric name -> number."""
    out = {
        "fd": results["fd"],
        "kid.mean": results["kid"]["mean"],
        "kid.std": results["kid"]["std"],
        "precision": results["precision"],
        "recall": results["recall"],
        "density": results["density"],
        "coverage": results["coverage"],
    }
    out.update({f"cond_acc.{a}": v for a, v in results["cond_acc"].items()})
    if results.get("palette_rules"):  # the palette read by the labelling rules (scores._palette_by_rules)
        out["palette_rules.accuracy"] = results["palette_rules"]["accuracy"]
    for a, values in results.get("intra_fd", {}).items():
        out.update({f"intra_fd.{a}.{value}": r["fd"] for value, r in values.items()})
    out.update({f"pixel_art.{m}": r["generated"] for m, r in results["pixel_art"].items() if isinstance(r, dict)})
    for region, r in (results.get("detail") or {}).items():  # detail.whole.pattern_distance, detail.face.fd, ...
        out[f"detail.{region}.pattern_distance"] = r["pattern_distance"]
        out[f"detail.{region}.isolated_share"] = r["isolated_share"]["generated"]
        if "fd" in r:
            out[f"detail.{region}.fd"] = r["fd"]
    out.update({f"speed.{k}": v for k, v in (results.get("speed") or {}).items()})  # step ms, drawn / s, export MB
    mem = results.get("memorisation")
    if mem:
        out["memorisation.median_nn"], out["memorisation.flagged_share"] = mem["median_nn"], mem["flagged_share"]
    tone = results.get("palette")
    if tone:
        for key in ("hue_spread", "hue_spread_real", "lightness_spread", "lightness_spread_real", "drift"):
            out[f"palette.{key}"] = tone[key]
        for value, r in tone["per_label"].items():
            out[f"palette.{value}.hue_spread"] = r["hue_spread"]
            out[f"palette.{value}.lightness_spread"] = r["lightness_spread"]
        out.update({f"palette.share.{v}": r["generated"] for v, r in tone["share"].items()})
    return {k: math.nan if v is None else float(v) for k, v in out.items()}


# ---------------------------------------------------------------- reading a study back
@dataclass
class StudyTables:
    """A finished study's folder, read back: what notebook 04 shows."""

    folder: Path
    results: pd.DataFrame  # one row per run
    summary: pd.DataFrame  # one row per (variant, metric)
    floor: pd.DataFrame | None  # real TRAIN vs VAL at the same n: what a perfect generator gets
    metrics: list[str]  # the spec's main metrics

    def table(self, metrics: list[str] | None = None) -> pd.DataFrame:
        return main_table(self.summary, metrics or self.metrics)

    def image(self, name: str) -> Path:
        return self.folder / name


def read_study(folder: str | Path, metrics: list[str]) -> StudyTables:
    folder = Path(folder)
    floor = pd.read_csv(folder / "floor.csv") if (folder / "floor.csv").exists() else None
    return StudyTables(folder, pd.read_csv(folder / "results.csv"), pd.read_csv(folder / "summary.csv"), floor, metrics)
