"""The docs' results tables, regenerated from the run summaries kept in the repository.

Each folder results/<name>/ holds a sweep's summary.csv (sweep.py writes it) and source.json:
the commit, the machine, the date and the command that made it. A page (README.md or
docs/*.md) asks for a table with a marker pair

    <!-- report:<name>:<data set> -->
    ... written here ...
    <!-- /report -->

and `python -m figures.report` rewrites everything between them: one row per model, the mean
over seeds with the range in brackets, followed by a line naming where the numbers came from.
`--check` changes nothing and exits 1 if a page is not what the summaries give.
No TensorFlow here.
"""

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import registry
from figures.tables import DECIMALS, number, table_lines, train_test_gap

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "results"
PAGES = ("README.md", "docs/*.md")
MARKER = re.compile(r"(<!-- report:([\w.-]+):([\w.-]+) -->\n)(.*?)(<!-- /report -->)", re.S)
COLUMNS = {"log_px": "log p(x)", "log_px_stderr": "its AIS standard error",
           "bdmc_gap": "BDMC gap", "train_log_px": "training-subset log p(x)",
           "train_test_gap": "train-test gap",
           "valid_log_px": "validation log p(x)", "best_step": "best step", "elbo": "true ELBO",
           "elbo_estimated_by_T": "ELBO estimated by T", "critic_kl_bias": "critic's KL bias",
           "posterior_gap": "posterior gap", "train_seconds": "training time (s)"}
# Shown only where a row of the table has them: AIS, held-out images, a validation split, an
# adversary's bias measured on a grid (D = 2).
OPTIONAL_COLUMNS = ("log_px_stderr", "bdmc_gap", "train_log_px", "train_test_gap",
                    "valid_log_px", "best_step", "critic_kl_bias")
# Columns a row's own figures give: a column -> (its rule, the columns it reads).
DERIVED = {"train_test_gap": (train_test_gap, ("train_log_px", "log_px"))}


def value(row: dict, column: str) -> float | None:
    """A run's figure in a column, None where the run lacks it."""
    if column in DERIVED:
        rule, inputs = DERIVED[column]
        return rule(*(value(row, c) for c in inputs))
    return None if row.get(column) in ("", None) else float(row[column])


def read_summary(folder: Path) -> tuple:
    """(summary.csv's finished rows, source.json) of a results folder."""
    with open(folder / "summary.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["status"] == "finished"]
    return rows, json.loads((folder / "source.json").read_text())


def spread(values: list, digits: int = 4) -> str:
    """The mean of the values, with their range in brackets where there are several."""
    if not values:
        return ""
    mean = number(sum(values) / len(values), digits)
    if len(values) == 1:
        return mean
    return f"{mean} ({number(min(values), digits)} to {number(max(values), digits)})"


def grid_settings(rows: list) -> list:
    """The grid settings of a summary: its columns between the seed and the metrics."""
    header = list(rows[0]) if rows else []
    if "seed" not in header or "log_px" not in header:
        return []
    return header[header.index("seed") + 1:header.index("log_px")]


def groups(rows: list) -> list:
    """[(label, runs)]: the rows of each model in the registry's order, and within a model of
    each combination of the grid settings that vary, in the order they first appear. A label
    naming settings (the IWAE's K) takes the model's defaults on the data set, and the grid's
    values of its runs."""
    grid = grid_settings(rows)
    swept = [k for k in grid if len({r[k] for r in rows}) > 1]
    out = []
    for model in (m for m in registry.names() if any(r["model"] == m for r in rows)):
        runs = [r for r in rows if r["model"] == model]
        for values in dict.fromkeys(tuple(r[k] for k in swept) for r in runs):
            group = [r for r in runs if tuple(r[k] for k in swept) == values]
            label = registry.row_label(model, group[0]["dataset"],
                                       {k: group[0][k] for k in grid}) + "".join(
                f", {k} {v}" for k, v in zip(swept, values))
            out.append((label, group))
    return out


def results_table(rows: list, source: dict, dataset: str) -> str:
    """The Markdown of one data set's rows: one line per model, in the registry's order (per
    model and value where a swept setting takes several)."""
    rows = [r for r in rows if r["dataset"] == dataset]
    columns = [c for c in COLUMNS if c not in OPTIONAL_COLUMNS
               or any(value(r, c) is not None for r in rows)]
    lines = []
    for label, runs in groups(rows):
        cells = [label]
        for column in columns:
            values = [v for v in (value(r, column) for r in runs) if v is not None]
            text = spread(values, DECIMALS.get(column, 4))
            if column == "elbo" and any(r.get("elbo_lower_bound") == "True" for r in runs):
                text = ">= " + text + ("" if all(r["elbo_converged"] == "True" for r in runs)
                                      else " (not settled in some runs)")
            elif column == "elbo" and any(r["elbo_converged"] == "False" for r in runs):
                text += " (not converged in some runs: an upper estimate)"
            cells.append(text)
        cells.append(str(len(runs)))
        lines.append(cells)
    optimum = rows[0]["optimum_log_px"] if rows else ""
    table = table_lines(["model", *(COLUMNS[c] for c in columns), "seeds"], lines,
                        "l" + "r" * (len(columns) + 1))
    where = (f"From `{RESULTS}/{source['name']}/summary.csv`: `{source['command']}` at commit "
             f"{source['commit'][:7]} on {source['machine']}, {source['date']}.")
    best = f" The optimum is {number(float(optimum))}." if optimum else ""
    return "\n".join(table) + f"\n\n{where}{best}\n"


def rendered(text: str, root: Path) -> str:
    """The page's text with every report block rewritten from its summary."""
    def block(match):
        name, dataset = match.group(2), match.group(3)
        rows, source = read_summary(root / RESULTS / name)
        return match.group(1) + results_table(rows, {"name": name, **source}, dataset) + \
            match.group(5)
    return MARKER.sub(block, text)


def pages(root: Path) -> list:
    return [p for pattern in PAGES for p in sorted(root.glob(pattern))]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m figures.report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a page differs from its summaries")
    parser.add_argument("--root", default=str(ROOT), help="the repository (default: this one)")
    args = parser.parse_args(argv)
    stale = []
    for page in pages(Path(args.root)):
        text = page.read_text()
        new = rendered(text, Path(args.root))
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new)
                print(f"wrote {page}")
    if args.check and stale:
        print(f"stale: {', '.join(map(str, stale))}; run python -m figures.report",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
