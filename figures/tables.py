"""Numbers as the project's Markdown tables print them."""


def number(value, digits: int = 4) -> str:
    """A number with `digits` decimals; '' for a missing value (None or ''), yes/no for a
    flag."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}"
