"""The project's Markdown tables: numbers as they print them, and the one table writer."""

ALIGNMENTS = {"l": "---", "r": "---:"}     # a column's alignment -> its separator cell
DECIMALS = {"train_seconds": 1, "best_step": 0}    # a column's decimals, where not number()'s


def number(value, digits: int = 4) -> str:
    """A number with `digits` decimals; '' for a missing value (None or ''), yes/no for a
    flag."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}"


def train_test_gap(train_log_px, log_px) -> float | None:
    """The train-test gap: training-subset minus test log p(x) (None where either is
    missing)."""
    return None if train_log_px is None or log_px is None else train_log_px - log_px


def table_lines(header: list, rows: list, align: str = "") -> list:
    """The lines of a Markdown table: the header, the separator, a line per row of cells
    (strings; a '|' inside a cell is written '/'). align holds one letter per column, l (the
    default) or r."""
    align = align.ljust(len(header), "l")

    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"
    return [line(header), "| " + " | ".join(ALIGNMENTS[a] for a in align) + " |",
            *(line(row) for row in rows)]
