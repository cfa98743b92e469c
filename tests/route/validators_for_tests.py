"""A validator importable by path, for the router tests."""


def no_other(text: str) -> str | None:
    return "category 'other' is not allowed" if '"other"' in text else None
