"""Markdown tables: min/median/max per runtime, with urunc's ratio to each peer (median/median)."""
import statistics


def stats(xs, scale=1.0):
    xs = [x * scale for x in xs]
    return min(xs), statistics.median(xs), max(xs)


def _num(v):
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _cell(v, ours, is_ours, ratios=True):
    if v is None:
        return "n/a"
    if isinstance(v, tuple):
        lo, med, hi = v
        s = f"{_num(med)} ({_num(lo)}–{_num(hi)})"
    else:
        med = v
        s = _num(v) if not isinstance(v, int) else f"{v:,}"
    if ratios and not is_ours and ours is not None and med:
        s += f" · urunc {ours / med:.2f}x"
    return s


def table(rows, names):
    """rows: (figure, {runtime: (min, med, max) | number | None}, target[, no_ratio]). The first
    name is urunc; every other cell carries urunc's median over that cell's median."""
    out = ["| figure | " + " | ".join(names) + " | target |",
           "|---|" + "---:|" * len(names) + "---|"]
    for fig, vals, target, *no_ratio in rows:
        ours = vals.get(names[0])
        ours = ours[1] if isinstance(ours, tuple) else ours
        cells = [_cell(vals.get(n), ours, i == 0, not no_ratio) for i, n in enumerate(names)]
        out.append(f"| {fig} | " + " | ".join(cells) + f" | {target} |")
    return "\n".join(out)


def instructions_table(counts, names, extra=None, mounts=1000):
    """counts: {runtime: {verb: n}}; extra: {runtime: create with `mounts` extra mounts}."""
    verbs = ["create", "start", "state", "delete"]
    num = lambda x: int(x) if x is not None else None
    rows = [(f"`{v}` instructions", {n: num(counts[n][v]) for n in names if n in counts}, "report")
            for v in verbs]
    if extra:
        rows.append((f"`create` instructions, {mounts:,} extra mounts",
                     {n: num(extra[n]["create"]) for n in names if n in extra}, "report"))
        rows.append((f"`create` with {mounts:,} extra mounts over without (x)",
                     {n: extra[n]["create"] / counts[n]["create"] for n in names
                      if n in extra and n in counts and counts[n]["create"]},
                     "urunc <= 1.2x", True))
    return table(rows, names)
