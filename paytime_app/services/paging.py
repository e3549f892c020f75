"""Page numbers and sizes as every list service reads them."""

# Deeper than anyone pages by hand, and small enough that (page - 1) * size fits any database's OFFSET.
MAX_PAGE = 10_000


def page_bounds(page: int, page_size: int, *, largest_size: int = 100) -> tuple[int, int]:
    """The page (1..MAX_PAGE) and size (1..largest_size) a list reads, whatever numbers it was asked for."""
    return min(max(page, 1), MAX_PAGE), min(max(page_size, 1), largest_size)


def page_count(total: int, page_size: int) -> int:
    """How many pages `total` rows fill, at least one (an empty list still shows its first page)."""
    return max(1, -(-total // page_size))
