"""The report of an evaluation: every score beside its floor as DataFrames (what notebooks show) and as the
plain-text table the `evaluate` verb prints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from heroportraits.evaluation.judge import describe_accuracy


# ---------------------------------------------------------------- reporting
def _f(x, fmt: str = "{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def _get(d, *path):
    """d[path[0]][path[1]]..., or None where any step is missing (e.g. no floor)."""
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _scaled(x, factor: float = 1e3):
    return None if x is None else x * factor


# Section titles of the text table, by the `group` column of metrics_frame.
GROUP_TITLES = {
    "distribution": None,
    "conditional accuracy": "conditional accuracy (judge prediction = condition)",
    "pixel art": "pixel-art fidelity (native scale {k}; floor = real TRAIN)",
    "detail": "detail on the native grid (3x3 neighbourhood patterns vs real VAL; floor = real TRAIN)",
    "mask": "the figure's mask, alpha (an RGBA model; floor = real VAL, its IoU against TRAIN)",
    "memorisation": "memorisation (nearest TRAIN image; {space}; floor = VAL vs TRAIN)",
}


def _row(group: str, metric: str, gen, flo, note: str = "", fmt: str = "{:.3f}") -> tuple:
    return group, metric, gen, flo, note, fmt


def _metric_rows(results: dict, floor: dict | None) -> list[tuple]:
    """(group, metric, generated, floor, note, format) for every score but the per-value ones."""
    fl = floor or {}
    rows = _feature_rows(results, fl) + _pixel_art_rows(results, fl) + _detail_rows(results, fl)
    return rows + _mask_rows(results) + _memorisation_rows(results, fl)


def _mask_rows(results: dict) -> list[tuple]:
    """An RGBA model's masks (evaluation.masks): the floor column is real VAL read the same way."""
    mask = results.get("mask")
    if not mask:  # an RGB model
        return []
    share, iou, clean = mask["figure_share"], mask["nearest_iou"], mask["clean"]
    return [
        _row("mask", "alpha 0 or 255 (share of pixels)", mask["binary"], None, "pixel art's alpha: 1"),
        _row("mask", "figure share (opaque pixels)", share["generated"], share["real"]),
        _row("mask", "IoU with the nearest real mask", iou["generated"], iou["real"], "1 = a real mask's shape"),
        _row("mask", "clean figures (as --transparent reads)", clean["generated"], clean["real"], "one piece, sized"),
    ]


def _feature_rows(results: dict, fl: dict) -> list[tuple]:
    """Scores in the judge's feature space: distribution distances and conditional accuracy."""
    j, kid, d = results["judge"], results["kid"], "distribution"
    rows = [
        _row(d, "FD (judge features)  lower=better", results["fd"], fl.get("fd"),
             f"judge joint acc {j['joint_accuracy']:.3f}", "{:.2f}"),
        _row(d, "KID x1000  lower=better", kid["mean"] * 1e3, _scaled(_get(fl, "kid", "mean")),
             f"{kid['subsets']} subsets of {kid['subset_size']}", "{:.2f}"),
        _row(d, "KID x1000 std", kid["std"] * 1e3, _scaled(_get(fl, "kid", "std")), "across subsets", "{:.2f}"),
        _row(d, f"precision (k={results['k']})  fidelity", results["precision"], fl.get("precision")),
        _row(d, f"recall (k={results['k']})  diversity", results["recall"], fl.get("recall")),
        _row(d, f"density (k={results['k_dc']})", results["density"], fl.get("density"), "~1 for matching sets"),
        _row(d, f"coverage (k={results['k_dc']})", results["coverage"], fl.get("coverage")),
    ]  # fmt: skip
    for a, v in results["cond_acc"].items():
        note = f"judge VAL acc {j['accuracy'].get(a, j['joint_accuracy']):.3f}"
        rows.append(_row("conditional accuracy", a, v, _get(fl, "cond_acc", a), note))
    rules = results.get("palette_rules")
    if rules:  # absent in evaluations written before it, None for datasets without a palette
        note = "the rules made the labels" if rules["labels_by_rules"] else "the rules against given labels"
        rows.append(_row("conditional accuracy", "palette, read by the rules", rules["accuracy"],
                         _get(fl, "palette_rules", "accuracy"), note))  # fmt: skip
    return rows


def _pixel_art_rows(results: dict, fl: dict) -> list[tuple]:
    px, k = results["pixel_art"], results["pixel_art"]["native_scale"]
    names = {
        "distinct_colours": ("distinct colours / image", "{:.1f}"),
        "block_uniformity": (f"one-colour {k}x{k} blocks", "{:.3f}"),
        "edge_sharpness": ("edge sharpness (top-10% step)", "{:.1f}"),
        "sharp_transitions": ("sharp share of colour steps", "{:.3f}"),
    }
    return [
        _row("pixel art", label, px[m]["generated"], _get(fl, "pixel_art", m, "generated"),
             f"real VAL {_f(px[m]['real'], fmt)}", fmt)
        for m, (label, fmt) in names.items()
    ]  # fmt: skip


def _detail_rows(results: dict, fl: dict) -> list[tuple]:
    """The detail score (evaluation.scores._detail) for the whole portrait and, where known, the face."""
    detail = results.get("detail")
    if not detail:  # an evaluation written before the detail score
        return []
    rows = []
    for region, prefix in (("whole", ""), ("face", "face: ")):
        r = detail.get(region)
        if r is None:
            continue
        iso = r["isolated_share"]
        rows += [
            _row("detail", f"{prefix}pattern distance (TV)  lower=better", r["pattern_distance"],
                 _get(fl, "detail", region, "pattern_distance"), "0 = real's local structure"),
            _row("detail", f"{prefix}isolated native pixels", iso["generated"],
                 _get(fl, "detail", region, "isolated_share", "generated"), f"real VAL {iso['real']:.3f}"),
        ]  # fmt: skip
        if "fd" in r:
            box = ",".join(str(v) for v in r["box"])
            rows.append(_row("detail", "face: FD (judge, outside grey)", r["fd"], _get(fl, "detail", region, "fd"),
                             f"face box {box}", "{:.2f}"))  # fmt: skip
    return rows


def _memorisation_rows(results: dict, fl: dict) -> list[tuple]:
    mem = results.get("memorisation")
    if not mem:
        return []
    flagged = f"flagged (<= VAL p{mem['threshold_percentile']:g} = {mem['threshold']:.2f})"
    return [
        _row("memorisation", "median nearest-neighbour distance", mem["median_nn"], mem["val_median_nn"],
             "larger = further from TRAIN", "{:.2f}"),
        _row("memorisation", flagged, mem["flagged_share"], _get(fl, "memorisation", "flagged_share"),
             f"{mem['flagged']} images; exact copies are distance 0", "{:.1%}"),
    ]  # fmt: skip


def metrics_frame(results: dict, floor: dict | None = None) -> pd.DataFrame:
    """One row per score: group, generated, floor (real TRAIN scored the same way; NaN without one), note.
    Indexed by the metric's label; the per-value scores are in `per_value_frame`."""
    rows = _metric_rows(results, floor)
    frame = pd.DataFrame([r[:5] for r in rows], columns=["group", "metric", "generated", "floor", "note"])
    return frame.set_index("metric").astype({"generated": float, "floor": float})


def per_value_frame(results: dict, floor: dict | None = None) -> pd.DataFrame:
    """One row per (attribute, value): how many generated / real VAL images have it, intra-class FD
    (generated vs real VAL with that value) and the share the judge reads as that value, with floors."""
    records = []
    for a, values in results["intra_fd"].items():
        for value, r in values.items():
            fl = _get(floor or {}, "intra_fd", a, value) or {}
            records.append(
                {
                    "attribute": a,
                    "value": value,
                    "n": r["n"],
                    "n_real": r["n_real"],
                    "fd": r["fd"],
                    "fd_floor": fl.get("fd"),
                    "cond_acc": r.get("cond_acc"),
                    "cond_acc_floor": fl.get("cond_acc"),
                    "judge_acc": results["judge"]["accuracy"].get(a),
                }
            )
    frame = pd.DataFrame.from_records(records).set_index(["attribute", "value"])
    return frame.astype({c: float for c in ("fd", "fd_floor", "cond_acc", "cond_acc_floor", "judge_acc")})


def format_table(results: dict, floor: dict | None = None) -> str:
    """A plain-text table of metrics_frame and per_value_frame: generated | floor | note."""
    j = results["judge"]
    lines = [
        f"Evaluation of {results['n']} images against dataset {results['dataset']!r} (real VAL n={results['n_val']})",
        f"Feature space: judge penultimate layer ({j['feature_dim']}-d). "
        f"Judge VAL accuracy: {describe_accuracy(j['accuracy'], j['joint_accuracy'])}",
        "",
        f"{'metric':<36}{'generated':>16}{'floor':>16}   note",
        "-" * 88,
    ]
    titles = {
        g: t and t.format(k=results["pixel_art"]["native_scale"], space=_get(results, "memorisation", "space"))
        for g, t in GROUP_TITLES.items()
    }
    group = "distribution"
    for g, metric, gen, flo, note, fmt in _metric_rows(results, floor):
        if g != group:
            if group == "conditional accuracy":  # per-value FD goes between conditioning and pixel art
                lines += _per_value_lines(results, floor)
            group = g
            lines.append(titles[g])
        label = metric if g == "distribution" else f"  {metric}"
        lines.append(f"{label:<36}{_f(gen, fmt):>16}{_f(flo, fmt):>16}   {note}")
    lines += _palette_cost_lines(results)
    if floor:
        lines.append(f"floor: {floor['n']} real TRAIN images with their true labels, scored the same way")
    lines += [f"note: {note}" for note in results.get("notes", [])]
    return "\n".join(lines)


def _per_value_lines(results: dict, floor: dict | None) -> list[str]:
    lines = ["intra-class FD (generated with value vs real VAL with value)"]
    for (a, value), r in per_value_frame(results, floor).iterrows():
        note = f"n={r['n']:.0f} vs {r['n_real']:.0f} real; judge {a} acc {r['judge_acc']:.3f}"
        fd, fd_floor = (None if np.isnan(x) else x for x in (r["fd"], r["fd_floor"]))
        lines.append(f"{'  ' + a + '=' + value:<36}{_f(fd, '{:.2f}'):>16}{_f(fd_floor, '{:.2f}'):>16}   {note}")
    return lines


def _palette_cost_lines(results: dict) -> list[str]:
    """What drawing in the user's palette costs: the main scores with it (the table above) and without it."""
    plain = results.get("without_palette")
    if not plain:
        return []
    pairs = [
        ("FD", results["fd"], plain["fd"], "{:.2f}"),
        ("precision", results["precision"], plain["precision"], "{:.3f}"),
        ("recall", results["recall"], plain["recall"], "{:.3f}"),
        ("joint accuracy", results["cond_acc"]["joint"], plain["cond_acc"]["joint"], "{:.3f}"),
        ("colours", results["pixel_art"]["distinct_colours"]["generated"],
         plain["pixel_art"]["distinct_colours"]["generated"], "{:.1f}"),
        ("detail", _get(results, "detail", "whole", "pattern_distance"),
         _get(plain, "detail", "whole", "pattern_distance"), "{:.3f}"),
    ]  # fmt: skip
    shown = ", ".join(f"{name} {_f(a, fmt)} ({_f(b, fmt)} without)" for name, a, b, fmt in pairs)
    return [f"in the user's palette: {shown}"]
